//! Provisioning through the CLI (issue 13): a `run --image` never takes what another
//! command made under the same name.

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};
use crate::images::{rootfs_dir, store_with_image};

pub fn tests() -> Vec<Test> {
    vec![test!(
        "images",
        run_image_refuses_the_name_of_a_bundle_create_rootfs_and_keeps_it
    )]
}

/// `bundle create --name X` makes the root filesystem X; `run --image --name X --rm`
/// must fail before recording X as its own, so neither its `--rm` nor a later `delete`
/// removes that root filesystem.
fn run_image_refuses_the_name_of_a_bundle_create_rootfs_and_keeps_it(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/img:1", "a")?;
    let store_s = store.display().to_string();
    let storage = ctx.path("storage");
    let storage_s = storage.display().to_string();
    let bundle = ctx.path("bundle");
    let id = ctx.id("taken");
    ctx.track(&id);
    let common = ["--image-root", &store_s, "--storage-root", &storage_s];
    let mut create = vec!["bundle"];
    create.extend(common);
    let bundle_s = bundle.display().to_string();
    create.extend([
        "create",
        "--image",
        "localhost/spec/img:1",
        "--name",
        &id,
        &bundle_s,
    ]);
    ctx.sk(&create).run()?.expect_ok()?;
    let rootfs = rootfs_dir(&storage, &id);
    ensure!(
        rootfs.join("a").is_file(),
        "bundle create made no {}",
        rootfs.display()
    );

    let mut run = vec!["run", "--image", "localhost/spec/img:1"];
    run.extend(common);
    run.extend(["--rm", "--name", &id, "--", "true"]);
    let out = ctx.sk(&run).run()?;
    out.expect_failure("run --image with the name of a bundle create rootfs")?;
    out.expect_stderr_contains("already exists")?;
    ensure!(
        rootfs.join("a").is_file(),
        "run --image --rm removed the root filesystem bundle create made"
    );
    ctx.sk(&["delete", "--force", "--storage-root", &storage_s, &id])
        .run()?
        .expect_ok()?;
    ensure!(
        rootfs.join("a").is_file(),
        "delete --force removed the root filesystem bundle create made"
    );
    // Its owner's command removes it (and unmounts it, with the overlay driver).
    let mut rm = vec!["bundle"];
    rm.extend(common);
    rm.extend(["rm", &id]);
    ctx.sk(&rm).run()?.expect_ok()?;
    Ok(())
}
