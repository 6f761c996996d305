//! The checks, in a pod's life order: a pod with a network, containers in it sharing its
//! namespaces, exec, status, stats, logs, an OOM kill, stop and removal, and nothing left.
//! A step the rest depends on (the pod, a container) ends the run when it fails; the pod is
//! removed in any case.

use std::time::Duration;

use k8s_cri::v1 as cri;
use tonic::Code;

use crate::client::{self, Cri};
use crate::config;
use crate::tap::Tally;
use crate::Opts;

const MIB: i64 = 1 << 20;
/// How long a state the checks wait for may take (the bound only ends a failing run).
const WAIT_TRIES: u32 = 300;
const WAIT_STEP: Duration = Duration::from_millis(100);

type R<T> = Result<T, String>;

fn st(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

pub async fn run(opts: &Opts) -> Tally {
    let mut t = Tally::default();
    let mut c = match client::connect(&opts.socket).await {
        Ok(c) => c,
        Err(e) => {
            t.not_ok("connect to containerd's CRI socket", &e);
            return t;
        }
    };
    let mut pod = None;
    if let Err(e) = flow(&mut c, opts, &mut t, &mut pod).await {
        t.not_ok("the checks that depend on the last one", &e);
    }
    finish(&mut c, opts, &mut t, pod.as_deref()).await;
    t
}

/// The shim daemons serving this containerd (their command line names its socket).
fn shims(opts: &Opts) -> Vec<u32> {
    let needle = format!("-address {}", opts.socket.display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let serving = cmd.contains("containerd-shim-stockade-v1")
            && cmd.contains(&needle)
            && cmd.contains(" -socket ");
        serving.then_some(pid)
    })
    .collect()
}

async fn status(c: &mut Cri, id: &str) -> R<cri::ContainerStatus> {
    c.rt.container_status(cri::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .map_err(st)?
    .into_inner()
    .status
    .ok_or_else(|| "ContainerStatus without a status".into())
}

async fn wait_state(c: &mut Cri, id: &str, want: cri::ContainerState) -> R<cri::ContainerStatus> {
    let mut last = None;
    for _ in 0..WAIT_TRIES {
        let s = status(c, id).await?;
        if s.state == want as i32 {
            return Ok(s);
        }
        last = Some(s.state);
        tokio::time::sleep(WAIT_STEP).await;
    }
    Err(format!("still in state {last:?}, not {want:?}"))
}

async fn exec(c: &mut Cri, id: &str, cmd: &[&str]) -> R<cri::ExecSyncResponse> {
    Ok(c.rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .map_err(st)?
        .into_inner())
}

/// Creates and starts a container; the id.
async fn run_container(
    c: &mut Cri,
    pod: &str,
    pod_cfg: &cri::PodSandboxConfig,
    cfg: cri::ContainerConfig,
) -> R<String> {
    let id =
        c.rt.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer: {}", st(e)))?
        .into_inner()
        .container_id;
    c.rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer: {}", st(e)))?;
    Ok(id)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn flow(c: &mut Cri, opts: &Opts, t: &mut Tally, pod_out: &mut Option<String>) -> R<()> {
    let v =
        c.rt.version(cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .map_err(st)
        .map(|r| r.into_inner());
    t.check(
        "Version: containerd answers CRI v1",
        match &v {
            Ok(v) if v.runtime_api_version == "v1" && v.runtime_name == "containerd" => Ok(()),
            Ok(v) => Err(format!("{v:?}")),
            Err(e) => Err(e.clone()),
        },
    );

    let img = c
        .img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: opts.image.clone(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .map_err(st)?
        .into_inner();
    if !t.check(
        "ImageStatus: the locally imported image is there (nothing is pulled)",
        match img.image {
            Some(i) if i.repo_tags.contains(&opts.image) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    ) {
        return Err("no image to run".into());
    }

    let uid = format!("critest-{}", std::process::id());
    let pod_cfg = config::pod(&opts.log_dir, &uid);
    let pod =
        c.rt.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox: {}", st(e)))?
        .into_inner()
        .pod_sandbox_id;
    *pod_out = Some(pod.clone());
    t.ok("RunPodSandbox: the pause container runs in a new network namespace");

    let ps =
        c.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .map_err(st)?
        .into_inner()
        .status
        .ok_or("PodSandboxStatus without a status")?;
    let ip = ps
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    t.check(
        "PodSandboxStatus: ready, with an IP from the CNI bridge",
        if ps.state == cri::PodSandboxState::SandboxReady as i32
            && ip.parse::<std::net::Ipv4Addr>().is_ok()
        {
            Ok(())
        } else {
            Err(format!("state {} ip {ip:?}", ps.state))
        },
    );

    let server_cmd = [
        "sh",
        "-c",
        "mkdir -p /tmp/www && echo pong > /tmp/www/index.html && echo server-up && \
         echo server-err >&2 && httpd -f -p 127.0.0.1:8080 -h /tmp/www & \
         trap 'kill $!; exit 0' TERM; wait",
    ];
    let server = run_container(
        c,
        &pod,
        &pod_cfg,
        config::container("server", &opts.image, &server_cmd, 64 * MIB),
    )
    .await?;
    t.ok("CreateContainer + StartContainer: a web server in the pod");
    let client_cmd = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];
    let client = run_container(
        c,
        &pod,
        &pod_cfg,
        config::container("client", &opts.image, &client_cmd, 64 * MIB),
    )
    .await?;
    t.ok("CreateContainer + StartContainer: a second container in the same pod");

    for (name, id) in [("server", &server), ("client", &client)] {
        let r = wait_state(c, id, cri::ContainerState::ContainerRunning).await;
        t.check(
            &format!("ContainerStatus: {name} is running"),
            r.map(|_| ()),
        );
    }
    let s = shims(opts);
    t.check(
        "one shim serves the pod (sandbox and two containers)",
        if s.len() == 1 {
            Ok(())
        } else {
            Err(format!("shim daemons: {s:?}"))
        },
    );

    let r = exec(c, &client, &["sh", "-c", "echo out; echo err >&2; exit 3"]).await?;
    t.check(
        "ExecSync: stdout, stderr and the exit code",
        if text(&r.stdout) == "out\n" && text(&r.stderr) == "err\n" && r.exit_code == 3 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        },
    );

    let ns_cmd = [
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts",
    ];
    let a = exec(c, &server, &ns_cmd).await?;
    let b = exec(c, &client, &ns_cmd).await?;
    t.check(
        "both containers are in the pod's network, IPC and UTS namespaces",
        if a.exit_code == 0 && a.stdout == b.stdout && text(&a.stdout).lines().count() == 3 {
            Ok(())
        } else {
            Err(format!(
                "server {:?}\nclient {:?}",
                text(&a.stdout),
                text(&b.stdout)
            ))
        },
    );
    let h = exec(c, &client, &["hostname"]).await?;
    t.check(
        "the container's hostname is the pod's",
        if text(&h.stdout).trim() == config::POD_HOSTNAME {
            Ok(())
        } else {
            Err(format!("{:?}", text(&h.stdout)))
        },
    );

    let mut got = None;
    for _ in 0..WAIT_TRIES / 3 {
        let r = exec(
            c,
            &client,
            &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"],
        )
        .await?;
        if r.exit_code == 0 {
            got = Some(text(&r.stdout));
            break;
        }
        got = Some(format!("exit {} {}", r.exit_code, text(&r.stderr)));
        tokio::time::sleep(WAIT_STEP).await;
    }
    t.check(
        "the client reaches the server on 127.0.0.1 (one network namespace)",
        match got {
            Some(s) if s == "pong\n" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    let stats =
        c.rt.container_stats(cri::ContainerStatsRequest {
            container_id: server.clone(),
        })
        .await
        .map_err(st)
        .map(|r| r.into_inner().stats);
    t.check(
        "ContainerStats: CPU time and memory use",
        match stats {
            Ok(Some(s)) => {
                let cpu = s
                    .cpu
                    .as_ref()
                    .and_then(|c| c.usage_core_nano_seconds.as_ref())
                    .map_or(0, |v| v.value);
                let mem = s
                    .memory
                    .as_ref()
                    .and_then(|m| m.working_set_bytes.as_ref())
                    .map_or(0, |v| v.value);
                if cpu > 0 && mem > 0 {
                    Ok(())
                } else {
                    Err(format!("cpu {cpu} ns, working set {mem} bytes: {s:?}"))
                }
            }
            Ok(None) => Err("no stats".into()),
            Err(e) => Err(e),
        },
    );

    exits_and_logs(c, opts, t, &pod, &pod_cfg).await?;
    oom(c, opts, t, &pod, &pod_cfg).await?;

    c.rt.stop_container(cri::StopContainerRequest {
        container_id: server.clone(),
        timeout: 10,
    })
    .await
    .map_err(|e| format!("StopContainer: {}", st(e)))?;
    let s = status(c, &server).await?;
    t.check(
        "StopContainer: the server ends on TERM; ContainerStatus says exited, code 0",
        if s.state == cri::ContainerState::ContainerExited as i32 && s.exit_code == 0 {
            Ok(())
        } else {
            Err(format!(
                "state {} exit {} reason {:?}",
                s.state, s.exit_code, s.reason
            ))
        },
    );
    Ok(())
}

async fn exits_and_logs(
    c: &mut Cri,
    opts: &Opts,
    t: &mut Tally,
    pod: &str,
    pod_cfg: &cri::PodSandboxConfig,
) -> R<()> {
    let cmd = ["sh", "-c", "echo line-out; echo line-err >&2; exit 5"];
    let id = run_container(
        c,
        pod,
        pod_cfg,
        config::container("exits", &opts.image, &cmd, 0),
    )
    .await?;
    let s = wait_state(c, &id, cri::ContainerState::ContainerExited).await;
    t.check(
        "ContainerStatus: a finished container is exited with its code (5)",
        match &s {
            Ok(s) if s.exit_code == 5 => Ok(()),
            Ok(s) => Err(format!("exit code {}", s.exit_code)),
            Err(e) => Err(e.clone()),
        },
    );
    let path = opts.log_dir.join("exits.log");
    let mut last = Err("no log yet".to_string());
    for _ in 0..WAIT_TRIES / 3 {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        last = match (
            config::log_has(&log, "stdout", "line-out"),
            config::log_has(&log, "stderr", "line-err"),
        ) {
            (Ok(true), Ok(true)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(e),
            _ => Err(format!("{}: {log:?}", path.display())),
        };
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
    t.check(
        "the log at the pod's log path is in the CRI format (<time> stdout F line-out)",
        last,
    );
    Ok(())
}

async fn oom(
    c: &mut Cri,
    opts: &Opts,
    t: &mut Tally,
    pod: &str,
    pod_cfg: &cri::PodSandboxConfig,
) -> R<()> {
    // dd fills a 64 MiB buffer in a cgroup limited to 16 MiB.
    let cmd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];
    let id = run_container(
        c,
        pod,
        pod_cfg,
        config::container("oom", &opts.image, &cmd, 16 * MIB),
    )
    .await?;
    let s = wait_state(c, &id, cri::ContainerState::ContainerExited).await;
    t.check(
        "a container past its memory limit is OOMKilled (TaskOOM from the shim)",
        match &s {
            Ok(s) if s.reason == "OOMKilled" && s.exit_code == 137 => Ok(()),
            Ok(s) => Err(format!("exit {} reason {:?}", s.exit_code, s.reason)),
            Err(e) => Err(e.clone()),
        },
    );
    Ok(())
}

/// Stops and removes the pod (and so its containers), then checks nothing is listed and
/// the pod's shim is gone.
async fn finish(c: &mut Cri, opts: &Opts, t: &mut Tally, pod: Option<&str>) {
    let Some(pod) = pod else { return };
    let stop =
        c.rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .map_err(st);
    t.check("StopPodSandbox", stop.map(|_| ()));
    let rm =
        c.rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .map_err(st);
    t.check("RemovePodSandbox", rm.map(|_| ()));
    let gone =
        c.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await;
    let pods =
        c.rt.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map(|r| r.into_inner().items.len());
    let ctrs =
        c.rt.list_containers(cri::ListContainersRequest { filter: None })
            .await
            .map(|r| r.into_inner().containers.len());
    t.check(
        "after RemovePodSandbox no pod or container is listed",
        match (&gone, &pods, &ctrs) {
            (Err(e), Ok(0), Ok(0)) if e.code() == Code::NotFound => Ok(()),
            _ => Err(format!(
                "status {:?}, pods {pods:?}, containers {ctrs:?}",
                gone.map(|_| "found")
            )),
        },
    );
    let mut left = shims(opts);
    for _ in 0..WAIT_TRIES {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(WAIT_STEP).await;
        left = shims(opts);
    }
    t.check(
        "the pod's shim has exited",
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        },
    );
}
