-- Kutt's tables links, domains, visits and users (their foreign keys' target) in
-- SQLite, as Kutt makes them: its knex migrations (server/migrations/, which call
-- server/models/*.model.js) of thedevs-network/kutt v3.2.3 (commit
-- fc832d7e7243d5472714e17abfe84b908901e1a7) run with knex 3.1.0 and better-sqlite3,
-- then dumped (sqlite3 .schema); the tables ips, hosts and knex_migrations left out,
-- nothing else changed.

CREATE TABLE `users` (`id` integer not null primary key autoincrement, `apikey` varchar(255), `banned` boolean not null default '0', `banned_by_id` integer, `email` varchar(255) not null, `role` text check (`role` in ('USER', 'ADMIN')) not null default 'USER', `password` varchar(255) not null, `reset_password_expires` datetime, `reset_password_token` varchar(255), `change_email_expires` datetime, `change_email_token` varchar(255), `change_email_address` varchar(255), `verification_expires` datetime, `verification_token` varchar(255), `verified` boolean not null default '0', `created_at` datetime not null default CURRENT_TIMESTAMP, `updated_at` datetime not null default CURRENT_TIMESTAMP, foreign key(`banned_by_id`) references `users`(`id`));

CREATE UNIQUE INDEX `users_email_unique` on `users` (`email`);

CREATE TABLE `domains` (`id` integer not null primary key autoincrement, `banned` boolean not null default '0', `banned_by_id` integer, `address` varchar(255) not null, `homepage` varchar(255) null, `user_id` integer, `uuid` char(36) not null default (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))),2) || '-' || substr('89ab',abs(random()) % 4 + 1, 1) || substr(lower(hex(randomblob(2))),2) || '-' || lower(hex(randomblob(6)))), `created_at` datetime not null default CURRENT_TIMESTAMP, `updated_at` datetime not null default CURRENT_TIMESTAMP, foreign key(`banned_by_id`) references `users`(`id`), constraint `domains_user_id_foreign` foreign key(`user_id`) references `users`(`id`) on delete SET NULL);

CREATE UNIQUE INDEX `domains_address_unique` on `domains` (`address`);

CREATE TABLE `links` (`id` integer not null primary key autoincrement, `address` varchar(255) not null, `description` varchar(255), `banned` boolean not null default '0', `banned_by_id` integer, `domain_id` integer, `password` varchar(255), `expire_in` datetime, `target` varchar(2040) not null, `user_id` integer, `visit_count` integer not null default '0', `uuid` char(36) not null default (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))),2) || '-' || substr('89ab',abs(random()) % 4 + 1, 1) || substr(lower(hex(randomblob(2))),2) || '-' || lower(hex(randomblob(6)))), `created_at` datetime not null default CURRENT_TIMESTAMP, `updated_at` datetime not null default CURRENT_TIMESTAMP, foreign key(`banned_by_id`) references `users`(`id`), foreign key(`domain_id`) references `domains`(`id`), constraint `links_user_id_foreign` foreign key(`user_id`) references `users`(`id`) on delete CASCADE);

CREATE TABLE `visits` (`id` integer not null primary key autoincrement, `countries` json, `created_at` datetime not null default CURRENT_TIMESTAMP, `updated_at` datetime default CURRENT_TIMESTAMP, `link_id` integer, `user_id` integer, `referrers` json, `total` integer not null default '0', `br_chrome` integer not null default '0', `br_edge` integer not null default '0', `br_firefox` integer not null default '0', `br_ie` integer not null default '0', `br_opera` integer not null default '0', `br_other` integer not null default '0', `br_safari` integer not null default '0', `os_android` integer not null default '0', `os_ios` integer not null default '0', `os_linux` integer not null default '0', `os_macos` integer not null default '0', `os_other` integer not null default '0', `os_windows` integer not null default '0', constraint `visits_link_id_foreign` foreign key(`link_id`) references `links`(`id`) on delete CASCADE, constraint `visits_user_id_foreign` foreign key(`user_id`) references `users`(`id`) on delete CASCADE);

CREATE UNIQUE INDEX `users_apikey_unique` on `users` (`apikey`);

CREATE INDEX links_domain_id_index ON links (domain_id);

CREATE INDEX links_user_id_index ON links (user_id);

CREATE INDEX links_address_index ON links (address);

CREATE INDEX links_expire_in_index ON links (expire_in);

CREATE INDEX domains_address_index ON domains (address);

CREATE INDEX domains_user_id_index ON domains (user_id);

CREATE INDEX visits_link_id_index ON visits (link_id);

CREATE INDEX visits_user_id_index ON visits (user_id);

