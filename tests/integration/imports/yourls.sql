-- YOURLS's tables, as its installer creates them with the default prefix "yourls_":
-- yourls_create_sql_tables() in includes/functions-install.php of YOURLS/YOURLS
-- (1.10.5-dev, DB version 507, commit b8c7882e34309aab63ac0361b4df19ea5dce6392),
-- the PHP string concatenation joined, one statement a paragraph.

CREATE TABLE IF NOT EXISTS `yourls_url` (`keyword` varchar(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',`url` text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,`title` text COLLATE utf8mb4_unicode_ci DEFAULT NULL,`timestamp` timestamp NOT NULL DEFAULT current_timestamp(),`ip` varchar(41) COLLATE utf8mb4_unicode_ci NOT NULL,`clicks` int(10) unsigned NOT NULL,PRIMARY KEY (`keyword`),KEY `ip` (`ip`),KEY `timestamp` (`timestamp`),KEY `url_idx` (`url`(30))) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `yourls_options` (`option_id` bigint(20) unsigned NOT NULL auto_increment,`option_name` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL default '',`option_value` longtext COLLATE utf8mb4_unicode_ci NOT NULL,PRIMARY KEY  (`option_id`,`option_name`),KEY `option_name` (`option_name`)) AUTO_INCREMENT=1 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `yourls_log` (`click_id` int(11) NOT NULL auto_increment,`click_time` datetime NOT NULL,`shorturl` varchar(100) BINARY NOT NULL,`referrer` varchar(200) NOT NULL,`user_agent` varchar(255) NOT NULL,`ip_address` varchar(41) NOT NULL,`country_code` char(2) NOT NULL,PRIMARY KEY  (`click_id`),KEY `shorturl` (`shorturl`)) AUTO_INCREMENT=1 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
