DROP TABLE school_signals;
DROP TABLE notice_notes;
DROP TABLE sessions;
DROP TABLE staff_accounts;
