//! What packagers install from the binary itself: completion scripts and man pages,
//! generated from the clap definitions with no configuration at all.

use std::collections::BTreeSet;
use std::time::Duration;

fn relay(dir: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("webex-relay");
    // No INTERNAL_BOT_URL, no secrets: none is needed to print these.
    cmd.env_clear()
        .current_dir(dir)
        .timeout(Duration::from_secs(30));
    cmd
}

fn stdout(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _webex__relay"),
        ("zsh", "#compdef webex-relay"),
        ("fish", "complete -c webex-relay"),
    ] {
        let script = stdout(relay(dir.path()).args(["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["completions", "man", "check-config"] {
            assert!(script.contains(word), "{shell} does not complete {word}");
        }
    }
    relay(dir.path())
        .args(["completions", "tcsh"])
        .assert()
        .code(2);
}

#[test]
fn the_man_page_names_the_subcommands_and_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    let page = stdout(relay(dir.path()).arg("man"));
    assert!(
        page.lines().any(|l| l.starts_with(".TH webex-relay 1")),
        "{page}"
    );
    for reference in ["webex\\-relay\\-completions(1)", "webex\\-relay\\-man(1)"] {
        assert!(page.contains(reference), "no {reference}: {page}");
    }
    // The configuration help (`--help`'s long text) is the page's extra section.
    for var in [
        "INTERNAL_BOT_URL",
        "RELAY_API_KEY",
        "WEBEX_WEBHOOK_SECRET",
        "SSL_CERT_PATH",
        "INTERNAL_CA_PATH",
        "RELAY_RATE_LIMIT",
        "HTTPS_PROXY",
    ] {
        assert!(page.contains(var), "the man page does not mention {var}");
    }
}

#[test]
fn man_out_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pages");
    let listed = stdout(relay(dir.path()).args(["man", "--out-dir", "pages"]));
    let written: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = [
        "webex-relay.1",
        "webex-relay-completions.1",
        "webex-relay-man.1",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(written, expected);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for name in &expected {
        let page = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(page.contains(&format!(".TH {} 1", name.trim_end_matches(".1"))));
    }
    // A folder that cannot be made: exit 1 naming it, no panic.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let assert = relay(dir.path())
        .args(["man", "--out-dir", "file/pages"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("file/pages") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn check_config_and_a_subcommand_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    relay(dir.path())
        .args(["--check-config", "man"])
        .assert()
        .code(2);
}
