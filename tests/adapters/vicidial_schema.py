"""VICIdial's log tables for the tests, written from their column lists (docs/adapters.md), with
the column types VICIdial uses; only the columns the adapter reads and a few neighbours."""

DDL = """
CREATE TABLE vicidial_log (uniqueid VARCHAR(20) PRIMARY KEY, lead_id INT UNSIGNED,
 list_id BIGINT UNSIGNED, campaign_id VARCHAR(8), call_date DATETIME, start_epoch INT UNSIGNED,
 end_epoch INT UNSIGNED, length_in_sec INT, status VARCHAR(6), phone_code VARCHAR(10),
 phone_number VARCHAR(18), user VARCHAR(20), comments VARCHAR(255), processed ENUM('Y','N'),
 user_group VARCHAR(20), term_reason VARCHAR(30), alt_dial VARCHAR(6), called_count SMALLINT,
 INDEX (call_date));
CREATE TABLE vicidial_closer_log (closecallid INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
 lead_id INT UNSIGNED, list_id BIGINT UNSIGNED, campaign_id VARCHAR(20), call_date DATETIME,
 start_epoch INT UNSIGNED, end_epoch INT UNSIGNED, length_in_sec INT, status VARCHAR(6),
 phone_number VARCHAR(18), user VARCHAR(20), queue_seconds DECIMAL(7,2) DEFAULT 0,
 term_reason VARCHAR(30), uniqueid VARCHAR(20), queue_position SMALLINT UNSIGNED);
CREATE TABLE vicidial_agent_log (agent_log_id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
 user VARCHAR(20), server_ip VARCHAR(15), event_time DATETIME, lead_id INT UNSIGNED,
 campaign_id VARCHAR(8), pause_epoch INT UNSIGNED, pause_sec SMALLINT UNSIGNED DEFAULT 0,
 wait_epoch INT UNSIGNED, wait_sec SMALLINT UNSIGNED DEFAULT 0, talk_epoch INT UNSIGNED,
 talk_sec SMALLINT UNSIGNED DEFAULT 0, dispo_epoch INT UNSIGNED,
 dispo_sec SMALLINT UNSIGNED DEFAULT 0, status VARCHAR(6), user_group VARCHAR(20),
 comments VARCHAR(20), sub_status VARCHAR(6), dead_epoch INT UNSIGNED,
 dead_sec SMALLINT UNSIGNED DEFAULT 0, processed ENUM('Y','N'), uniqueid VARCHAR(20),
 pause_type ENUM('UNDEFINED','SYSTEM','AGENT','API','ADMIN') DEFAULT 'UNDEFINED');
CREATE TABLE vicidial_user_log (user_log_id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
 user VARCHAR(20), event VARCHAR(50), campaign_id VARCHAR(8), event_date DATETIME,
 event_epoch INT UNSIGNED, user_group VARCHAR(20));
CREATE TABLE vicidial_carrier_log (uniqueid VARCHAR(20) PRIMARY KEY, call_date DATETIME,
 server_ip VARCHAR(15), lead_id INT UNSIGNED, hangup_cause TINYINT UNSIGNED,
 dialstatus VARCHAR(16), channel VARCHAR(100), dial_time SMALLINT UNSIGNED,
 answered_time SMALLINT UNSIGNED, sip_hangup_cause SMALLINT UNSIGNED,
 sip_hangup_reason VARCHAR(50), caller_code VARCHAR(30));
CREATE TABLE vicidial_dial_log (caller_code VARCHAR(30), lead_id INT UNSIGNED,
 server_ip VARCHAR(15), call_date DATETIME, extension VARCHAR(100), channel VARCHAR(100),
 context VARCHAR(100), timeout MEDIUMINT UNSIGNED, outbound_cid VARCHAR(100),
 sip_hangup_cause SMALLINT UNSIGNED, sip_hangup_reason VARCHAR(50), uniqueid VARCHAR(20));
CREATE TABLE vicidial_campaigns (campaign_id VARCHAR(8) PRIMARY KEY, campaign_name VARCHAR(40),
 dial_method VARCHAR(20));
CREATE TABLE vicidial_statuses (status VARCHAR(6) PRIMARY KEY, status_name VARCHAR(30),
 selectable ENUM('Y','N'), human_answered ENUM('Y','N'), category VARCHAR(20),
 sale ENUM('Y','N'), dnc ENUM('Y','N'), customer_contact ENUM('Y','N'),
 not_interested ENUM('Y','N'), unworkable ENUM('Y','N'), scheduled_callback ENUM('Y','N'),
 completed ENUM('Y','N'), answering_machine ENUM('Y','N'));
CREATE TABLE vicidial_campaign_statuses (status VARCHAR(6), status_name VARCHAR(30),
 campaign_id VARCHAR(8), selectable ENUM('Y','N'), human_answered ENUM('Y','N'),
 category VARCHAR(20), sale ENUM('Y','N'), dnc ENUM('Y','N'), customer_contact ENUM('Y','N'),
 not_interested ENUM('Y','N'), unworkable ENUM('Y','N'), scheduled_callback ENUM('Y','N'),
 completed ENUM('Y','N'), answering_machine ENUM('Y','N'))
"""
