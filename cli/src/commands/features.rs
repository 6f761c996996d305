//! `features`: what this runtime supports, as JSON.

pub fn run() -> anyhow::Result<u8> {
    println!(
        "{}",
        serde_json::to_string_pretty(&stockade_runtime::features::features())?
    );
    Ok(0)
}
