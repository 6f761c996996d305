//! What the OCI runtime-tools conformance run (scripts/integration/runtime-tools.sh) found,
//! kept as black-box tests, and the defaults `run --image` adds on Linux that a runc-driven
//! caller would otherwise supply: `runc spec`'s own capability sets (ambient capabilities
//! without inheritable ones) start as with runc, and an image's container gets Podman's
//! default seccomp profile.

use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::images::store_with_image;

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "conform",
            runc_spec_ambient_capabilities_without_inheritable_are_skipped_as_runc_does
        ),
        test!("conform", run_image_gets_podmans_default_seccomp_profile),
    ]
}

fn linux_only() -> TestResult {
    if std::env::consts::OS == "linux" {
        Ok(())
    } else {
        Err(Fail::Skip("capabilities and seccomp are Linux's".into()))
    }
}

/// The `Key:` value of /proc/self/status text.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
}

fn runc_spec_ambient_capabilities_without_inheritable_are_skipped_as_runc_does(
    ctx: &Ctx,
) -> TestResult {
    linux_only()?;
    // `runc spec`'s process.capabilities, verbatim: no inheritable set.
    let three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let mut b = ctx.bundle(&["cat", "/proc/self/status"])?;
    b.process()["capabilities"] = json!({
        "bounding": three, "effective": three, "permitted": three, "ambient": three
    });
    let id = ctx.id("runc-spec-caps");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    let text = out.stdout_now();
    let stderr = out.stderr_now();
    for (key, want) in [
        ("CapEff", "0000000020000420"),
        ("CapPrm", "0000000020000420"),
        ("CapBnd", "0000000020000420"),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
    ] {
        ensure!(
            field(&text, key) == Some(want),
            "{key}: expected {want}; /proc/self/status:\n{text}"
        );
    }
    ensure!(
        stderr.contains("process.capabilities.ambient")
            && stderr.contains("CAP_KILL")
            && stderr.contains("skipped"),
        "expected one warning naming the skipped ambient capabilities; stderr: {stderr:?}"
    );
    Ok(())
}

fn run_image_gets_podmans_default_seccomp_profile(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let store = store_with_image(ctx, "localhost/spec/seccomp:1", "s")?;
    let storage = ctx.path("storage");
    let id = ctx.id("image-seccomp");
    ctx.track(&id);
    let out = ctx
        .sk(&[
            "run",
            "--image",
            "localhost/spec/seccomp:1",
            "--image-root",
            &store.display().to_string(),
            "--storage-root",
            &storage.display().to_string(),
            "--rm",
            "--name",
            &id,
            "--",
            "cat",
            "/proc/self/status",
        ])
        .run()?
        .expect_ok()?;
    ensure!(
        field(&out.stdout, "Seccomp") == Some("2"),
        "expected Seccomp: 2 (a filter) in the image's container; status:\n{}",
        out.stdout
    );
    ensure!(
        field(&out.stdout, "Seccomp_filters") == Some("1"),
        "expected exactly one filter; status:\n{}",
        out.stdout
    );
    // The profile's content: `bundle create` writes the same defaults into config.json.
    let bundle = ctx.path("bundle");
    let store_s = store.display().to_string();
    let storage_s = storage.display().to_string();
    let made = ctx
        .sk(&[
            "bundle",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage_s,
            "create",
            "--image",
            "localhost/spec/seccomp:1",
            &bundle.display().to_string(),
        ])
        .run()?
        .expect_ok()?;
    // The root filesystem goes again (with the overlay driver it is a mount).
    let name = made.stdout.trim().to_string();
    ctx.sk(&[
        "bundle",
        "--image-root",
        &store_s,
        "--storage-root",
        &storage_s,
        "rm",
        &name,
    ])
    .run()?
    .expect_ok()?;
    let text = std::fs::read_to_string(bundle.join("config.json"))
        .map_err(|e| format!("reading the bundle's config.json: {e}"))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("config.json: {e}"))?;
    let seccomp = &config["linux"]["seccomp"];
    ensure!(
        seccomp["defaultAction"] == "SCMP_ACT_ERRNO" && seccomp["defaultErrnoRet"] == 38,
        "expected Podman's default action (ERRNO, ENOSYS); linux.seccomp: {seccomp}"
    );
    Ok(())
}
