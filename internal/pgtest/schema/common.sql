-- Odoo tables read or written by odoo_exporter and odoo_healer, with the
-- columns, types and constraints Odoo gives them (read in
-- odoo/addons/base/models and addons/bus/models); the same in 16.0, 17.0 and
-- 18.0 for what the tests use. The ir_cron tables, which differ between
-- series, are in cron<series>.sql. {{.Version}} is the base module's version.
CREATE TABLE res_users (
    id serial PRIMARY KEY,
    login varchar NOT NULL UNIQUE,
    active boolean DEFAULT true
);
INSERT INTO res_users (id, login) VALUES (1, '__system__'), (2, 'admin');
SELECT setval('res_users_id_seq', 2);

CREATE TABLE ir_module_module (
    id serial PRIMARY KEY,
    name varchar NOT NULL UNIQUE,
    state varchar(16),
    latest_version varchar,
    shortdesc jsonb,
    author varchar,
    application boolean DEFAULT false,
    demo boolean DEFAULT false,
    create_date timestamp without time zone DEFAULT (now() at time zone 'utc'),
    write_date timestamp without time zone DEFAULT (now() at time zone 'utc')
);
CREATE INDEX ir_module_module_state_index ON ir_module_module (state);
INSERT INTO ir_module_module (name, state, latest_version, shortdesc) VALUES
    ('base', 'installed', '{{.Version}}', '{"en_US": "Base"}'),
    ('web', 'installed', '{{.Version}}', '{"en_US": "Web"}'),
    ('bus', 'installed', '{{.Version}}', '{"en_US": "IM Bus"}'),
    ('mail', 'installed', '{{.Version}}', '{"en_US": "Discuss"}'),
    ('sale', 'uninstalled', NULL, '{"en_US": "Sales"}');

CREATE TABLE ir_act_server (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    type varchar NOT NULL DEFAULT 'ir.actions.server',
    usage varchar NOT NULL DEFAULT 'ir_cron',
    state varchar NOT NULL DEFAULT 'code',
    model_id integer,
    model_name varchar,
    code text
);

CREATE TABLE ir_attachment (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    description text,
    res_model varchar,
    res_field varchar,
    res_id integer,
    company_id integer,
    type varchar NOT NULL DEFAULT 'binary',
    url varchar(1024),
    public boolean,
    access_token varchar,
    db_datas bytea,
    store_fname varchar,
    file_size integer,
    checksum varchar(40),
    mimetype varchar,
    index_content text,
    create_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    create_date timestamp without time zone DEFAULT (now() at time zone 'utc'),
    write_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    write_date timestamp without time zone DEFAULT (now() at time zone 'utc')
);
CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);
CREATE INDEX ir_attachment_url_index ON ir_attachment (url);
CREATE INDEX ir_attachment_store_fname_index ON ir_attachment (store_fname);

CREATE TABLE bus_bus (
    id serial PRIMARY KEY,
    channel varchar,
    message varchar,
    create_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    create_date timestamp without time zone,
    write_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    write_date timestamp without time zone
);
