//! The README's quick start runs as written: `scripts/quickstart.sh` against a stack that
//! needs a verified e-mail to pay, as production does.

use e2e::{mailpit_api, spawn_app_with, Options};

#[tokio::test]
async fn the_quick_start_script_runs_as_written_and_ends_with_a_ticket() {
    let app = spawn_app_with(Options {
        require_verified_to_pay: true,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 2, 5).await;
    let out = tempfile_dir();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = tokio::process::Command::new("bash")
        .arg(root.join("scripts/quickstart.sh"))
        .env("API", &app.base)
        .env("MAILPIT_API", mailpit_api())
        .env("EVENT", &event)
        .env("OUT", &out)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "quickstart failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Done: quickstart-"), "{stdout}");
    let png = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .expect("the QR image was saved");
    let bytes = std::fs::read(png.path()).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // It failed loudly before paying had the e-mail not been verified: the booking paid
    // is the user's, verified.
    assert_eq!(
        app.count("users", bson::doc! {"isVerified": true, "role": "user"})
            .await,
        1
    );
    let _ = std::fs::remove_dir_all(&out);
    app.shutdown().await;
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("quickstart-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn the_quick_start_script_stops_at_the_first_error_with_the_answer() {
    // No such event: the hold step fails, and the script says which step and why.
    let app = spawn_app_with(Options::default()).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = tokio::process::Command::new("bash")
        .arg(root.join("scripts/quickstart.sh"))
        .env("API", &app.base)
        .env("MAILPIT_API", mailpit_api())
        .env("EVENT", "0123456789abcdef01234567")
        .output()
        .await
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("/seats?status=available&limit=1 answered 404"),
        "{stderr}"
    );
    app.shutdown().await;
}

/// The README's copy-paste block, taken from the README itself.
fn readme_block() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("```sh\nAPI=${API:-http://127.0.0.1:8080}")
        .expect("the README's quick start block");
    let body = &readme[start + "```sh\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

#[tokio::test]
async fn the_readme_block_runs_as_written() {
    let app = spawn_app_with(Options {
        require_verified_to_pay: true,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 5).await;
    let run = tokio::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(readme_block())
        .env("API", &app.base)
        .env("MAILPIT", mailpit_api())
        .env("EVENT", &event)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the README block failed:\n{stdout}\n{stderr}"
    );
    // The payment's answer, the ticket list and the logout's answer are printed.
    assert!(stdout.contains("\"status\":\"completed\""), "{stdout}");
    assert!(
        stdout.contains("\"qrCode") || stdout.contains("\"ticketNumber"),
        "{stdout}"
    );
    assert!(stdout.contains("tokensRevokedBefore"), "{stdout}");
    app.shutdown().await;
}
