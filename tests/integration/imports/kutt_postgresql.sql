-- Kutt's tables links, domains, visits and users (their foreign keys' target) in
-- PostgreSQL, as Kutt makes them: its knex migrations (server/migrations/, which call
-- server/models/*.model.js) of thedevs-network/kutt v3.2.3 (commit
-- fc832d7e7243d5472714e17abfe84b908901e1a7) run with knex 3.1.0 and `pg` on
-- PostgreSQL, then dumped (pg_dump --schema-only --no-owner); the tables ips, hosts
-- and knex_migrations left out, nothing else changed.

CREATE TABLE public.domains (
    id integer NOT NULL,
    banned boolean DEFAULT false NOT NULL,
    banned_by_id integer,
    address character varying(255) NOT NULL,
    homepage character varying(255),
    user_id integer,
    uuid uuid DEFAULT gen_random_uuid() NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);

CREATE SEQUENCE public.domains_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.domains_id_seq OWNED BY public.domains.id;

CREATE TABLE public.links (
    id integer NOT NULL,
    address character varying(255) NOT NULL,
    description character varying(255),
    banned boolean DEFAULT false NOT NULL,
    banned_by_id integer,
    domain_id integer,
    password character varying(255),
    expire_in timestamp with time zone,
    target character varying(2040) NOT NULL,
    user_id integer,
    visit_count integer DEFAULT 0 NOT NULL,
    uuid uuid DEFAULT gen_random_uuid() NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);

CREATE SEQUENCE public.links_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.links_id_seq OWNED BY public.links.id;

CREATE TABLE public.users (
    id integer NOT NULL,
    apikey character varying(255),
    banned boolean DEFAULT false NOT NULL,
    banned_by_id integer,
    email character varying(255) NOT NULL,
    role text DEFAULT 'USER'::text NOT NULL,
    password character varying(255) NOT NULL,
    reset_password_expires timestamp with time zone,
    reset_password_token character varying(255),
    change_email_expires timestamp with time zone,
    change_email_token character varying(255),
    change_email_address character varying(255),
    verification_expires timestamp with time zone,
    verification_token character varying(255),
    verified boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['USER'::text, 'ADMIN'::text])))
);

CREATE SEQUENCE public.users_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.users_id_seq OWNED BY public.users.id;

CREATE TABLE public.visits (
    id integer NOT NULL,
    countries jsonb,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    link_id integer,
    user_id integer,
    referrers jsonb,
    total integer DEFAULT 0 NOT NULL,
    br_chrome integer DEFAULT 0 NOT NULL,
    br_edge integer DEFAULT 0 NOT NULL,
    br_firefox integer DEFAULT 0 NOT NULL,
    br_ie integer DEFAULT 0 NOT NULL,
    br_opera integer DEFAULT 0 NOT NULL,
    br_other integer DEFAULT 0 NOT NULL,
    br_safari integer DEFAULT 0 NOT NULL,
    os_android integer DEFAULT 0 NOT NULL,
    os_ios integer DEFAULT 0 NOT NULL,
    os_linux integer DEFAULT 0 NOT NULL,
    os_macos integer DEFAULT 0 NOT NULL,
    os_other integer DEFAULT 0 NOT NULL,
    os_windows integer DEFAULT 0 NOT NULL
);

CREATE SEQUENCE public.visits_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.visits_id_seq OWNED BY public.visits.id;

ALTER TABLE ONLY public.domains ALTER COLUMN id SET DEFAULT nextval('public.domains_id_seq'::regclass);

ALTER TABLE ONLY public.links ALTER COLUMN id SET DEFAULT nextval('public.links_id_seq'::regclass);

ALTER TABLE ONLY public.users ALTER COLUMN id SET DEFAULT nextval('public.users_id_seq'::regclass);

ALTER TABLE ONLY public.visits ALTER COLUMN id SET DEFAULT nextval('public.visits_id_seq'::regclass);

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT domains_address_unique UNIQUE (address);

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT domains_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.links
    ADD CONSTRAINT links_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_apikey_unique UNIQUE (apikey);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_email_unique UNIQUE (email);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.visits
    ADD CONSTRAINT visits_pkey PRIMARY KEY (id);

CREATE INDEX domains_address_index ON public.domains USING btree (address);

CREATE INDEX domains_user_id_index ON public.domains USING btree (user_id);

CREATE INDEX links_address_index ON public.links USING btree (address);

CREATE INDEX links_domain_id_index ON public.links USING btree (domain_id);

CREATE INDEX links_expire_in_index ON public.links USING btree (expire_in);

CREATE INDEX links_user_id_index ON public.links USING btree (user_id);

CREATE INDEX visits_link_id_index ON public.visits USING btree (link_id);

CREATE INDEX visits_user_id_index ON public.visits USING btree (user_id);

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT domains_banned_by_id_foreign FOREIGN KEY (banned_by_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT domains_user_id_foreign FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.links
    ADD CONSTRAINT links_banned_by_id_foreign FOREIGN KEY (banned_by_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.links
    ADD CONSTRAINT links_domain_id_foreign FOREIGN KEY (domain_id) REFERENCES public.domains(id);

ALTER TABLE ONLY public.links
    ADD CONSTRAINT links_user_id_foreign FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_banned_by_id_foreign FOREIGN KEY (banned_by_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.visits
    ADD CONSTRAINT visits_link_id_foreign FOREIGN KEY (link_id) REFERENCES public.links(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.visits
    ADD CONSTRAINT visits_user_id_foreign FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;
