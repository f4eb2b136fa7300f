-- ir_cron of Odoo 18.0: cron_name is varchar; numbercall and doall are gone; failure_count, first_failure_date and ir_cron_progress are new.
CREATE TABLE ir_cron (
    id serial PRIMARY KEY,
    ir_actions_server_id integer NOT NULL REFERENCES ir_act_server (id) ON DELETE RESTRICT,
    cron_name varchar,
    user_id integer NOT NULL REFERENCES res_users (id) ON DELETE SET NULL,
    active boolean DEFAULT true,
    interval_number integer NOT NULL DEFAULT 1,
    interval_type varchar NOT NULL DEFAULT 'months',
    failure_count integer DEFAULT 0,
    first_failure_date timestamp without time zone,
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

CREATE TABLE ir_cron_progress (
    id serial PRIMARY KEY,
    cron_id integer NOT NULL REFERENCES ir_cron (id) ON DELETE CASCADE,
    remaining integer DEFAULT 0,
    done integer DEFAULT 0,
    deactivate boolean,
    timed_out_counter integer DEFAULT 0,
    create_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    create_date timestamp without time zone,
    write_uid integer REFERENCES res_users (id) ON DELETE SET NULL,
    write_date timestamp without time zone
);
CREATE INDEX ir_cron_progress_cron_id_index ON ir_cron_progress (cron_id);
