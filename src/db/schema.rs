// The tables, written by hand to the types both backends share (see migrations/).

diesel::table! {
    schools (brin) {
        brin -> Text,
        name -> Text,
        holiday_region -> Text,
        locale -> Text,
        school_day_start -> Text,
        coordinator_name -> Text,
        coordinator_email -> Text,
        deputy_name -> Nullable<Text>,
        deputy_email -> Nullable<Text>,
        participating -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    enrollments (id) {
        id -> BigInt,
        bsn_hash -> Text,
        school_brin -> Text,
        grp -> Text,
        valid_from -> Date,
        valid_until -> Nullable<Date>,
        consent -> Text,
    }
}

diesel::table! {
    objections (bsn_hash) {
        bsn_hash -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        key_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        mode -> Text,
    }
}

diesel::table! {
    inbox_events (event_id) {
        event_id -> Text,
        body_hash -> Text,
        incident_id -> Text,
        revision -> BigInt,
        status -> Text,
        source -> Text,
        received_at -> Timestamp,
        committed_at -> Timestamp,
    }
}

diesel::table! {
    incidents (incident_id) {
        incident_id -> Text,
        applied_revision -> BigInt,
        status -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    decisions (event_id, child_index) {
        event_id -> Text,
        child_index -> Integer,
        incident_id -> Text,
        outcome -> Text,
        notice_id -> Nullable<Text>,
        decided_at -> Timestamp,
    }
}

diesel::table! {
    notices (id) {
        id -> Text,
        incident_id -> Text,
        child_bsn_hash -> Text,
        child_index -> Integer,
        school_brin -> Text,
        child_given_name -> Nullable<Text>,
        child_family_name -> Nullable<Text>,
        child_date_of_birth -> Nullable<Text>,
        child_group -> Nullable<Text>,
        child_present -> Nullable<Text>,
        visited_at -> Timestamp,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        received_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        reminded_at -> Nullable<Timestamp>,
        escalated_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        close_outcome -> Nullable<Text>,
        purged_at -> Nullable<Timestamp>,
        withdrawn_at -> Nullable<Timestamp>,
        escalation_level -> Nullable<Text>,
    }
}

diesel::table! {
    operators (email) {
        email -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        notice_id -> Nullable<Text>,
        result -> Text,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        notice_id -> Text,
        kind -> Text,
        recipient -> Text,
        state -> Text,
        message_id -> Text,
        attempts -> Integer,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        expires_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        sent_to -> Nullable<Text>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    access_tokens (token_hash) {
        token_hash -> Text,
        notice_id -> Nullable<Text>,
        recipient_email -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox_messages (id) {
        id -> BigInt,
        message_id -> Text,
        exchange -> Text,
        routing_key -> Text,
        message_type -> Text,
        body -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        published_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    staff_accounts (email) {
        email -> Text,
        totp_secret -> Nullable<Text>,
        totp_enrolled_at -> Nullable<Timestamp>,
        totp_last_step -> BigInt,
        failed_attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        lockouts -> Integer,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        email -> Text,
        csrf_token -> Text,
        notice_id -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        verified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notice_notes (id) {
        id -> BigInt,
        notice_id -> Text,
        author -> Text,
        body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    school_signals (signal_id) {
        signal_id -> Text,
        notice_id -> Text,
        category -> Text,
        urgency -> Text,
        description -> Nullable<Text>,
        reporter_email -> Text,
        reported_at -> Timestamp,
        outbox_message_id -> Text,
    }
}

diesel::table! {
    key_fingerprints (purpose, key_id) {
        purpose -> Text,
        key_id -> Text,
        fingerprint -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    schools,
    enrollments,
    objections,
    api_keys,
    inbox_events,
    incidents,
    decisions,
    notices,
    outbox_messages,
    deliveries,
    access_tokens,
    audit_log,
    staff_accounts,
    sessions,
    notice_notes,
    school_signals,
    operators,
);

diesel::joinable!(enrollments -> schools (school_brin));
diesel::joinable!(notices -> schools (school_brin));
diesel::joinable!(deliveries -> notices (notice_id));
diesel::joinable!(access_tokens -> notices (notice_id));
diesel::joinable!(notice_notes -> notices (notice_id));
diesel::joinable!(school_signals -> notices (notice_id));
