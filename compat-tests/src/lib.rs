//! Tests against real Dovecot.
