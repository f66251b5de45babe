-- Every portal request finds the schools of the signed-in address, without case.
CREATE INDEX schools_coordinator_email ON schools (lower(coordinator_email));
CREATE INDEX schools_deputy_email ON schools (lower(deputy_email));
