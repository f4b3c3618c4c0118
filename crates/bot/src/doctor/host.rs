//! Checks of this machine and its files: TLS, `.env`, database, personalities, admins, logs, metrics.

use super::*;

/// `/metrics` is open unless `METRICS_TOKEN` is set; optional, so never a failure.
pub(super) fn check_metrics(config: &Config) -> Check {
    const NAME: &str = "metrics";
    match &config.metrics_token {
        Some(_) => Check::pass(
            NAME,
            "METRICS_TOKEN is set: /metrics requires Authorization: Bearer <token>",
        ),
        None => Check::skip(
            NAME,
            "METRICS_TOKEN is not set: /metrics answers anyone who reaches the port (set it, or keep the port private)",
        ),
    }
}

pub(super) fn check_tls(config: &Config, now: i64) -> Check {
    const NAME: &str = "tls";
    let Some(tls) = &config.tls else {
        return Check::skip(
            NAME,
            "TLS_CERT_PATH/TLS_KEY_PATH are not set: plain HTTP (fine behind a TLS proxy or the relay)",
        );
    };
    let not_after = match tls::certificate_not_after(&tls.cert) {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "TLS_CERT_PATH must be a PEM certificate chain (certbot: fullchain.pem) readable by the service user",
            );
        }
    };
    if let Err(e) = tls::check_key_matches(&tls.cert, &tls.key) {
        return Check::fail(
            NAME,
            e.to_string(),
            "TLS_KEY_PATH must be the private key of TLS_CERT_PATH (certbot: privkey.pem), readable by the service user",
        );
    }
    if let Some(ca) = &tls.client_ca
        && let Err(e) = std::fs::read(ca)
    {
        return Check::fail(
            NAME,
            format!("TLS_CLIENT_CA_PATH {}: {e}", ca.display()),
            "TLS_CLIENT_CA_PATH must be a readable PEM file of CA certificates",
        );
    }
    let days_left = (not_after - now).div_euclid(SECS_PER_DAY);
    let cert = tls.cert.display();
    if not_after <= now {
        return Check::fail(
            NAME,
            format!("{cert} expired on {}", date(not_after)),
            "renew it (`certbot renew`), then `systemctl reload webex-chatbot`",
        );
    }
    if days_left < EXPIRY_MARGIN_DAYS {
        return Check::fail(
            NAME,
            format!(
                "{cert} expires on {} (in {days_left} days)",
                date(not_after)
            ),
            "renew it (`certbot renew`), then `systemctl reload webex-chatbot`; check that the renewal timer runs (`systemctl list-timers certbot`)",
        );
    }
    Check::pass(
        NAME,
        format!(
            "{cert} valid until {} ({days_left} days), key matches",
            date(not_after)
        ),
    )
}

pub(super) fn check_env_file(path: &Path) -> Check {
    const NAME: &str = "env-file";
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::skip(
                NAME,
                format!(
                    "{} does not exist (settings come from the environment)",
                    path.display()
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{}: {e}", path.display()),
                "make .env readable by the service user only",
            );
        }
    };
    env_mode_check(path, &meta)
}

#[cfg(unix)]
pub(super) fn env_mode_check(path: &Path, meta: &std::fs::Metadata) -> Check {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Check::fail(
            "env-file",
            format!(
                "{} has mode {mode:03o}: other users can read the bot's secrets",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        );
    }
    Check::pass(
        "env-file",
        format!("{} has mode {mode:03o}", path.display()),
    )
}

#[cfg(not(unix))]
pub(super) fn env_mode_check(path: &Path, _meta: &std::fs::Metadata) -> Check {
    Check::skip(
        "env-file",
        format!("{}: file modes are a Unix check", path.display()),
    )
}

/// Where the database is, without credentials.
pub(super) fn database_label(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return format!("sqlite {}", rest.split('?').next().unwrap_or(rest));
    }
    match url::Url::parse(url) {
        Ok(u) => format!(
            "postgres {}{}",
            u.host_str().unwrap_or("localhost"),
            u.path()
        ),
        Err(_) => "postgres".to_owned(),
    }
}

/// An error text with the database password (if any) masked.
pub(super) fn redact_password(text: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(pw) if !pw.is_empty() => text.replace(&pw, "***"),
        _ => text.to_owned(),
    }
}

pub(super) async fn check_database(config: &Config) -> Check {
    const NAME: &str = "database";
    let label = database_label(&config.database_url);
    let sqlite = config.database_url.starts_with("sqlite:");
    let store = match startup::open_store(config).await {
        Ok(store) => store,
        Err(e) => {
            return Check::fail(
                NAME,
                format!(
                    "{label}: {}",
                    redact_password(&format!("{e:#}"), &config.database_url)
                ),
                if sqlite {
                    "the service user must be able to create and write the database file and its folder (run doctor as that user, from the service's working directory)"
                } else {
                    "check DATABASE_URL, that PostgreSQL runs, and that the role may create tables in the database"
                },
            );
        }
    };
    let writable = store.check_writable().await;
    store.close().await;
    match writable {
        Ok(()) => Check::pass(NAME, format!("{label}: reachable, migrated, writable")),
        Err(e) => Check::fail(
            NAME,
            format!(
                "{label} is not writable: {}",
                redact_password(&e.to_string(), &config.database_url)
            ),
            if sqlite {
                "give the service user write access to the database file, its -wal/-shm files and its folder"
            } else {
                "grant the role INSERT/UPDATE/DELETE on the bot's tables"
            },
        ),
    }
}

pub(super) fn check_personalities(config: &Config) -> Check {
    const NAME: &str = "personalities";
    let dir = config.personalities_dir.display();
    match Personalities::load(&config.personalities_dir, &config.default_personality) {
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            format!(
                "PERSONALITIES_DIR ({dir}) must be a readable folder holding {}.toml (DEFAULT_PERSONALITY)",
                config.default_personality
            ),
        ),
        Ok((_, errors)) if !errors.is_empty() => Check::fail(
            NAME,
            format!(
                "{} bad file(s): {}",
                errors.len(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "fix or remove the files listed (format: description, system_prompt, optional temperature/model/max_tokens), then `systemctl reload webex-chatbot`",
        ),
        Ok((set, _)) => {
            let names: Vec<&str> = set.iter().map(|p| p.name.as_str()).collect();
            Check::pass(
                NAME,
                format!(
                    "{} in {dir} ({}); default: {}",
                    names.len(),
                    names.join(", "),
                    set.default_personality().name
                ),
            )
        }
    }
}

pub(super) fn check_admins(config: &Config) -> Check {
    const NAME: &str = "admins";
    if config.admin_emails.is_empty() {
        return Check::fail(
            NAME,
            "ADMIN_EMAILS is empty: nobody can approve users or run admin commands in Webex",
            "set ADMIN_EMAILS=you@example.com (comma-separated for several)",
        );
    }
    let list: Vec<&str> = config.admin_emails.iter().map(|e| e.as_str()).collect();
    Check::pass(
        NAME,
        format!("{} admin(s): {}", list.len(), list.join(", ")),
    )
}

pub(super) fn check_log_folder(config: &Config) -> Check {
    const NAME: &str = "log-folder";
    let Some(file) = &config.log_file else {
        return Check::skip(NAME, "LOG_FILE is empty: logs go to stdout (journald) only");
    };
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fix = format!(
        "create {} and give it to the service user (`install -d -o webex-chatbot -m 700 {}`), or set LOG_FILE= (empty) to log to journald only",
        folder.display(),
        folder.display()
    );
    if !folder.exists() {
        // Serving creates the folder; that works when its nearest existing parent is writable.
        let parent = folder
            .ancestors()
            .skip(1)
            .find(|p| !p.as_os_str().is_empty() && p.exists());
        let parent = parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        return match probe_writable(&parent) {
            Ok(()) => Check::pass(
                NAME,
                format!(
                    "{} does not exist yet; serve creates it in {}",
                    folder.display(),
                    parent.display()
                ),
            ),
            Err(e) => Check::fail(
                NAME,
                format!(
                    "{} does not exist and {} is not writable: {e}",
                    folder.display(),
                    parent.display()
                ),
                fix,
            ),
        };
    }
    if let Err(e) = probe_writable(&folder) {
        return Check::fail(
            NAME,
            format!("{} is not writable: {e}", folder.display()),
            fix,
        );
    }
    if file.exists()
        && let Err(e) = std::fs::OpenOptions::new().append(true).open(file)
    {
        return Check::fail(
            NAME,
            format!("{} is not writable: {e}", file.display()),
            format!(
                "chown the log files in {} to the service user",
                folder.display()
            ),
        );
    }
    Check::pass(NAME, format!("{} is writable", folder.display()))
}

/// Creates and removes a file in `dir`: the only reliable test (modes, ACLs, read-only mounts).
pub(super) fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".webex-chatbot-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
