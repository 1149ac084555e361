//! `judge APP_DIR RENDER_JSON [DOCKERFILE]`: the "would it boot" judge over a render (`kubectl rails render
//! -o json`) of the app in APP_DIR. Prints one shortfall a line; exits 1 when there is any.
//! Used by `scripts/wild`.

use std::path::Path;
use std::process::ExitCode;

use kubectl_rails_core::detect::{self, DetectOptions};
use kubectl_rails_core::judge;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, render, dockerfile) = match args.as_slice() {
        [dir, render] => (dir, render, None),
        [dir, render, dockerfile] => (dir, render, Some(dockerfile.clone())),
        _ => {
            eprintln!("usage: judge APP_DIR RENDER_JSON [DOCKERFILE]");
            return ExitCode::from(2);
        }
    };
    let dir = Path::new(dir);
    let options = DetectOptions {
        dockerfile,
        ..DetectOptions::default()
    };
    let detection = match detect::detect(dir, &options) {
        Ok(d) => d,
        Err(e) => {
            println!("cannot read the app: {e}");
            return ExitCode::from(1);
        }
    };
    let list: serde_json::Value = match std::fs::read_to_string(render)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            println!("cannot read the render `{render}`: {e}");
            return ExitCode::from(1);
        }
    };
    let objects = list["items"].as_array().cloned().unwrap_or_default();
    let shortfalls = judge::judge(&detection, &judge::env_keys_read(dir), &objects);
    for s in &shortfalls {
        println!("{s}");
    }
    if shortfalls.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
