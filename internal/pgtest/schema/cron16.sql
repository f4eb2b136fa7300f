-- ir_cron of Odoo 16.0: cron_name is jsonb (a stored related field of the translatable ir.actions.server name); numbercall and doall exist.
CREATE TABLE ir_cron (
    id serial PRIMARY KEY,
    ir_actions_server_id integer NOT NULL REFERENCES ir_act_server (id) ON DELETE RESTRICT,
    cron_name jsonb,
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

