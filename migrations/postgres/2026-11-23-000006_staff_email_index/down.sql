DROP INDEX schools_deputy_email;
DROP INDEX schools_coordinator_email;
