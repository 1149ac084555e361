//! The test cluster's own scripts on this machine: `tests/cluster/down` stops only what `up`
//! started and removes only a folder `up` made. It runs on a state folder made here, with no
//! control plane behind it, so these tests never touch the shared cluster.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::root;

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The start time of a process, as `procs.sh` records it (field 22 of /proc/PID/stat).
fn started_at(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(19).unwrap().to_string()
}

/// Whether `child` still runs (reaps it when it has exited).
fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

fn down(state: &Path) -> crate::support::Run {
    let out = Command::new(root().join("tests/cluster/down"))
        .env("KUBECTL_RAILS_CLUSTER_STATE", state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    crate::support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn down_stops_what_up_recorded_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(state.join("logs")).unwrap();
    std::fs::create_dir_all(state.join("real")).unwrap();
    std::fs::write(state.join(".kubectl-rails-cluster"), "").unwrap();
    std::fs::write(state.join("real/restore"), "").unwrap();
    let log = state.join("logs/etcd.log");
    std::fs::write(&log, "").unwrap();

    // Someone reading a log of the cluster: its command line names the state folder.
    let mut reader = spawn("tail", &["-f", log.to_str().unwrap()]);
    // What `up` started, recorded with its start time.
    let mut ours = spawn("sleep", &["600"]);
    // A PID recorded long ago that the kernel has since given to another process.
    let mut reused = spawn("sleep", &["600"]);
    std::fs::write(
        state.join("pids"),
        format!(
            "etcd {} {}\nkube-apiserver {} 1\n",
            ours.id(),
            started_at(ours.id()),
            reused.id()
        ),
    )
    .unwrap();

    let out = down(&state);
    assert_eq!(out.code, 0, "{out:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (reader_alive, ours_alive, reused_alive) =
        (alive(&mut reader), alive(&mut ours), alive(&mut reused));
    for child in [&mut reader, &mut ours, &mut reused] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        reader_alive,
        "down killed a `tail -f` of a log in the state folder"
    );
    assert!(
        reused_alive,
        "down killed a process whose PID was recorded for another start"
    );
    assert!(!ours_alive, "down left the recorded process running");
    assert!(!state.exists(), "down left its state folder");
}

#[test]
fn down_and_up_refuse_a_folder_up_did_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    // KUBECTL_RAILS_CLUSTER_STATE=$HOME, say, which once held a `pids` file.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("work")).unwrap();
    std::fs::write(home.join("pids"), "").unwrap();
    std::fs::write(home.join("work/notes.txt"), "mine").unwrap();

    let out = down(&home);
    assert_eq!(out.code, 1, "{out:?}");
    out.stderr_has("it is not a state folder `up` made; nothing was stopped or removed");
    assert!(
        home.join("work/notes.txt").exists(),
        "down removed {home:?}"
    );

    // `up` refuses before it builds or starts anything (its first removal is the folder's).
    std::fs::remove_file(home.join("pids")).unwrap();
    let out = Command::new(root().join("tests/cluster/up"))
        .env("KUBECTL_RAILS_CLUSTER_STATE", &home)
        .env("KUBECTL_RAILS_REAL_NODE", "0")
        // Ports nobody uses, so that a port check cannot be what stops it.
        .env("KUBECTL_RAILS_PORT_BASE", "39100")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a test cluster's state folder"),
        "{stderr}"
    );
    assert!(home.join("work/notes.txt").exists(), "up removed {home:?}");
}
