-- Odoo 17.0 tables read or written by odoo_exporter and odoo_healer, with the
-- columns, types and constraints of Odoo 17.0 (read in odoo/addons/base/models
-- and addons/bus/models). Differences between series: cron_name type, numbercall/doall (<=17), failure_count and ir_cron_progress (18).
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
    ('base', 'installed', '17.0.1.3', '{"en_US": "Base"}'),
    ('web', 'installed', '17.0.1.3', '{"en_US": "Web"}'),
    ('bus', 'installed', '17.0.1.3', '{"en_US": "IM Bus"}'),
    ('mail', 'installed', '17.0.1.3', '{"en_US": "Discuss"}'),
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

CREATE TABLE ir_cron (
    id serial PRIMARY KEY,
    ir_actions_server_id integer NOT NULL REFERENCES ir_act_server (id) ON DELETE RESTRICT,
    cron_name varchar,
    user_id integer NOT NULL REFERENCES res_users (id) ON DELETE SET NULL,
    active boolean DEFAULT true,
    interval_number integer NOT NULL DEFAULT 1,
    interval_type varchar NOT NULL DEFAULT 'months',
    numbercall integer DEFAULT 1,
    doall boolean DEFAULT true,
    nextcall timestamp without time zone NOT NULL,
    lastcall timestamp without time zone,
    priority integer DEFAULT 5,
    create_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    create_date timestamp without time zone,
    write_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    write_date timestamp without time zone
);

CREATE TABLE ir_cron_trigger (
    id serial PRIMARY KEY,
    cron_id integer REFERENCES ir_cron (id) ON DELETE CASCADE,
    call_at timestamp without time zone,
    create_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    create_date timestamp without time zone,
    write_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    write_date timestamp without time zone
);
CREATE INDEX ir_cron_trigger_cron_id_index ON ir_cron_trigger (cron_id);
CREATE INDEX ir_cron_trigger_call_at_index ON ir_cron_trigger (call_at);

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
