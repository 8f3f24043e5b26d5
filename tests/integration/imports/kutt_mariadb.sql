-- Kutt's tables links, domains, visits and users (their foreign keys' target) in
-- MariaDB, as Kutt makes them: its knex migrations (server/migrations/, which call
-- server/models/*.model.js) of thedevs-network/kutt v3.2.3 (commit
-- fc832d7e7243d5472714e17abfe84b908901e1a7) run with knex 3.1.0 and mysql2 on
-- MariaDB 10.11, then dumped (mariadb-dump --no-data); the tables ips, hosts and
-- knex_migrations left out, the rest put in an order their foreign keys allow.


CREATE TABLE `users` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `apikey` varchar(255) DEFAULT NULL,
  `banned` tinyint(1) NOT NULL DEFAULT 0,
  `banned_by_id` int(10) unsigned DEFAULT NULL,
  `email` varchar(255) NOT NULL,
  `role` enum('USER','ADMIN') NOT NULL DEFAULT 'USER',
  `password` varchar(255) NOT NULL,
  `reset_password_expires` datetime DEFAULT NULL,
  `reset_password_token` varchar(255) DEFAULT NULL,
  `change_email_expires` datetime DEFAULT NULL,
  `change_email_token` varchar(255) DEFAULT NULL,
  `change_email_address` varchar(255) DEFAULT NULL,
  `verification_expires` datetime DEFAULT NULL,
  `verification_token` varchar(255) DEFAULT NULL,
  `verified` tinyint(1) NOT NULL DEFAULT 0,
  `created_at` datetime NOT NULL DEFAULT current_timestamp(),
  `updated_at` datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`id`),
  UNIQUE KEY `users_email_unique` (`email`),
  UNIQUE KEY `users_apikey_unique` (`apikey`),
  KEY `users_banned_by_id_foreign` (`banned_by_id`),
  CONSTRAINT `users_banned_by_id_foreign` FOREIGN KEY (`banned_by_id`) REFERENCES `users` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE `domains` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `banned` tinyint(1) NOT NULL DEFAULT 0,
  `banned_by_id` int(10) unsigned DEFAULT NULL,
  `address` varchar(255) NOT NULL,
  `homepage` varchar(255) DEFAULT NULL,
  `user_id` int(10) unsigned DEFAULT NULL,
  `uuid` char(36) NOT NULL DEFAULT uuid(),
  `created_at` datetime NOT NULL DEFAULT current_timestamp(),
  `updated_at` datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`id`),
  UNIQUE KEY `domains_address_unique` (`address`),
  KEY `domains_banned_by_id_foreign` (`banned_by_id`),
  KEY `domains_address_index` (`address`),
  KEY `domains_user_id_index` (`user_id`),
  CONSTRAINT `domains_banned_by_id_foreign` FOREIGN KEY (`banned_by_id`) REFERENCES `users` (`id`),
  CONSTRAINT `domains_user_id_foreign` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE `links` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `address` varchar(255) NOT NULL,
  `description` varchar(255) DEFAULT NULL,
  `banned` tinyint(1) NOT NULL DEFAULT 0,
  `banned_by_id` int(10) unsigned DEFAULT NULL,
  `domain_id` int(10) unsigned DEFAULT NULL,
  `password` varchar(255) DEFAULT NULL,
  `expire_in` datetime DEFAULT NULL,
  `target` varchar(2040) NOT NULL,
  `user_id` int(10) unsigned DEFAULT NULL,
  `visit_count` int(11) NOT NULL DEFAULT 0,
  `uuid` char(36) NOT NULL DEFAULT uuid(),
  `created_at` datetime NOT NULL DEFAULT current_timestamp(),
  `updated_at` datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `links_banned_by_id_foreign` (`banned_by_id`),
  KEY `links_domain_id_index` (`domain_id`),
  KEY `links_user_id_index` (`user_id`),
  KEY `links_address_index` (`address`),
  KEY `links_expire_in_index` (`expire_in`),
  CONSTRAINT `links_banned_by_id_foreign` FOREIGN KEY (`banned_by_id`) REFERENCES `users` (`id`),
  CONSTRAINT `links_domain_id_foreign` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`),
  CONSTRAINT `links_user_id_foreign` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE `visits` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `countries` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`countries`)),
  `created_at` datetime NOT NULL DEFAULT current_timestamp(),
  `updated_at` datetime DEFAULT current_timestamp(),
  `link_id` int(10) unsigned DEFAULT NULL,
  `user_id` int(10) unsigned DEFAULT NULL,
  `referrers` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`referrers`)),
  `total` int(11) NOT NULL DEFAULT 0,
  `br_chrome` int(11) NOT NULL DEFAULT 0,
  `br_edge` int(11) NOT NULL DEFAULT 0,
  `br_firefox` int(11) NOT NULL DEFAULT 0,
  `br_ie` int(11) NOT NULL DEFAULT 0,
  `br_opera` int(11) NOT NULL DEFAULT 0,
  `br_other` int(11) NOT NULL DEFAULT 0,
  `br_safari` int(11) NOT NULL DEFAULT 0,
  `os_android` int(11) NOT NULL DEFAULT 0,
  `os_ios` int(11) NOT NULL DEFAULT 0,
  `os_linux` int(11) NOT NULL DEFAULT 0,
  `os_macos` int(11) NOT NULL DEFAULT 0,
  `os_other` int(11) NOT NULL DEFAULT 0,
  `os_windows` int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `visits_link_id_index` (`link_id`),
  KEY `visits_user_id_index` (`user_id`),
  CONSTRAINT `visits_link_id_foreign` FOREIGN KEY (`link_id`) REFERENCES `links` (`id`) ON DELETE CASCADE,
  CONSTRAINT `visits_user_id_foreign` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
