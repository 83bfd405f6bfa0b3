//! `berth compose` against `berth daemon`: convergence, ordering, scale, profiles, the
//! project's lifecycle commands, networks (the project's default network, user networks with
//! aliases and fixed addresses, published ports), and label compatibility with Docker Compose
//! v2 (both tools manage each other's projects). Tests that are not about networking use
//! `network_mode: none`, which is cheaper.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, Out};

const COMPOSE_V2: &str = "/usr/local/bin/docker-compose-v2";

struct Proj {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Proj {
    fn new(name: &str, compose: &str) -> Proj {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), compose).unwrap();
        Proj { dir, _tmp: tmp }
    }

    fn write(&self, compose: &str) {
        std::fs::write(self.dir.join("compose.yaml"), compose).unwrap();
    }

    fn file_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("compose.yaml")).unwrap()
    }

    fn file(&self) -> String {
        self.dir.join("compose.yaml").to_string_lossy().into_owned()
    }
}

fn compose(d: &Daemon, p: &Proj, args: &[&str]) -> Out {
    let mut a: Vec<String> = vec!["compose".into(), "-f".into(), p.file()];
    a.extend(args.iter().map(|s| s.to_string()));
    d.berth(a)
}

fn compose_v2(d: &Daemon, dir: &Path, args: &[&str]) -> Out {
    compose_v2_env(d, dir, args, &[])
}

fn compose_v2_env(d: &Daemon, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = std::process::Command::new("timeout")
        .args(["-k", "5", "120", COMPOSE_V2])
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .expect("run docker-compose-v2 (scripts/install-deps installs it)");
    Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `name → id` of the project's containers (all states).
fn ids(d: &Daemon, project: &str) -> Vec<(String, String)> {
    let out = d
        .berth([
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Names}} {{.ID}}",
        ])
        .ok();
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    d.berth(["inspect", "-f", fmt, name]).ok()
}

const TWO: &str = r#"
services:
  web:
    image: busybox
    network_mode: none
    command: sleep 3600
    labels:
      tier: front
  worker:
    image: busybox
    network_mode: none
    command: sleep 3600
"#;

#[test]
fn up_is_idempotent_recreates_on_change_and_down_removes() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new("idem", TWO);
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("Container idem-web-1  Started"),
        "{}",
        out.stderr
    );
    let first = ids(&d, "idem");
    assert_eq!(
        first.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["idem-web-1", "idem-worker-1"]
    );
    // Labels as Compose sets them.
    let labels = inspect(&d, "idem-web-1", "{{json .Config.Labels}}");
    let l: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(l["com.docker.compose.project"], "idem");
    assert_eq!(l["com.docker.compose.service"], "web");
    assert_eq!(l["com.docker.compose.container-number"], "1");
    assert_eq!(l["com.docker.compose.oneoff"], "False");
    assert_eq!(l["com.docker.compose.version"], "2.40.3");
    assert_eq!(l["tier"], "front");
    assert_eq!(
        l["com.docker.compose.project.config_files"],
        p.file().as_str()
    );
    let hash = compose(&d, &p, &["config", "--hash", "web"]).ok();
    assert_eq!(
        hash,
        format!(
            "web {}",
            l["com.docker.compose.config-hash"].as_str().unwrap()
        )
    );

    // Nothing changed: the same containers.
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("Container idem-web-1  Running"),
        "{}",
        out.stderr
    );
    assert_eq!(ids(&d, "idem"), first);

    // A changed service is recreated; the other is left alone.
    p.write(&TWO.replacen("command: sleep 3600", "command: sleep 3601", 1));
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("Container idem-web-1  Recreate"),
        "{}",
        out.stderr
    );
    let second = ids(&d, "idem");
    assert_ne!(second[0].1, first[0].1, "web must be recreated");
    assert_eq!(second[1].1, first[1].1, "worker must be kept");
    assert_eq!(
        inspect(&d, "idem-web-1", "{{json .Config.Cmd}}"),
        r#"["sleep","3601"]"#
    );
    // --force-recreate recreates everything.
    compose(&d, &p, &["up", "-d", "--force-recreate"]).ok();
    let third = ids(&d, "idem");
    assert_ne!(third[1].1, second[1].1);

    let ps = compose(&d, &p, &["ps"]).ok();
    assert!(ps.starts_with("NAME"), "{ps}");
    assert!(
        ps.contains("idem-web-1") && ps.contains("idem-worker-1"),
        "{ps}"
    );
    assert_eq!(compose(&d, &p, &["ps", "--services"]).ok(), "web\nworker");
    assert_eq!(compose(&d, &p, &["ps", "-q"]).ok().lines().count(), 2);

    compose(&d, &p, &["down", "-t", "1"]).ok();
    assert!(ids(&d, "idem").is_empty());
}

#[test]
fn completed_successfully_orders_and_fails_dependents() {
    let d = Daemon::start();
    d.load_busybox();
    let ok = r#"
services:
  init:
    image: busybox
    network_mode: none
    command: sh -c "sleep 1; echo init-done"
  app:
    image: busybox
    network_mode: none
    command: sleep 3600
    depends_on:
      init:
        condition: service_completed_successfully
"#;
    let p = Proj::new("order", ok);
    compose(&d, &p, &["up", "-d"]).ok();
    let init_done = inspect(&d, "order-init-1", "{{.State.FinishedAt}}");
    let app_started = inspect(&d, "order-app-1", "{{.State.StartedAt}}");
    assert_eq!(inspect(&d, "order-init-1", "{{.State.ExitCode}}"), "0");
    assert!(
        app_started > init_done,
        "app started at {app_started}, before init finished at {init_done}"
    );
    compose(&d, &p, &["down", "-t", "1"]).ok();

    let p2 = Proj::new("orderfail", &ok.replace("echo init-done", "exit 3"));
    let out = compose(&d, &p2, &["up", "-d"]);
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("service \"init\" didn't complete successfully: exit 3"),
        "{}",
        out.stderr
    );
    assert_eq!(
        inspect(&d, "orderfail-app-1", "{{.State.Status}}"),
        "created",
        "the dependent must not start"
    );
    compose(&d, &p2, &["down", "-t", "1"]).ok();
}

#[test]
fn scale_profiles_and_lifecycle_commands() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new(
        "life",
        r#"
services:
  worker:
    image: busybox
    network_mode: none
    command: sh -c "echo hello from $$HOSTNAME; exec sleep 3600"
    deploy:
      replicas: 3
  debug:
    image: busybox
    network_mode: none
    command: sleep 3600
    profiles: [dev]
"#,
    );
    compose(&d, &p, &["up", "-d"]).ok();
    let names: Vec<String> = ids(&d, "life").into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec!["life-worker-1", "life-worker-2", "life-worker-3"]
    );
    // Scaled down: the highest numbers go.
    compose(&d, &p, &["up", "-d", "--scale", "worker=1"]).ok();
    let names: Vec<String> = ids(&d, "life").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["life-worker-1"]);
    // A profile's service starts only with the profile.
    compose(
        &d,
        &p,
        &["--profile", "dev", "up", "-d", "--scale", "worker=1"],
    )
    .ok();
    assert!(ids(&d, "life").iter().any(|(n, _)| n == "life-debug-1"));

    let logs = compose(&d, &p, &["logs", "--no-color", "worker"]).ok();
    assert!(logs.starts_with("worker-1  | hello from"), "{logs}");
    compose(&d, &p, &["stop", "-t", "1", "worker"]).ok();
    assert_eq!(inspect(&d, "life-worker-1", "{{.State.Running}}"), "false");
    compose(&d, &p, &["start", "worker"]).ok();
    assert_eq!(inspect(&d, "life-worker-1", "{{.State.Running}}"), "true");
    compose(&d, &p, &["pause", "worker"]).ok();
    assert_eq!(inspect(&d, "life-worker-1", "{{.State.Status}}"), "paused");
    compose(&d, &p, &["unpause", "worker"]).ok();
    compose(&d, &p, &["kill", "worker"]).ok();
    assert_eq!(inspect(&d, "life-worker-1", "{{.State.Running}}"), "false");
    compose(&d, &p, &["rm", "-f", "worker"]).ok();
    assert!(!ids(&d, "life").iter().any(|(n, _)| n == "life-worker-1"));
    let ls = d.berth(["compose", "ls"]).ok();
    assert!(ls.contains("life") && ls.contains("running(1)"), "{ls}");
    compose(&d, &p, &["--profile", "dev", "down", "-t", "1"]).ok();
    assert!(ids(&d, "life").is_empty());
}

#[test]
fn orphans_are_reported_and_removed() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new("orph", TWO);
    compose(&d, &p, &["up", "-d"]).ok();
    p.write(
        "services:\n  web:\n    image: busybox\n    network_mode: none\n    command: sleep 3600\n    labels:\n      tier: front\n",
    );
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr
            .contains("Found orphan containers ([orph-worker-1]) for this project"),
        "{}",
        out.stderr
    );
    compose(&d, &p, &["up", "-d", "--remove-orphans"]).ok();
    let names: Vec<String> = ids(&d, "orph").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["orph-web-1"]);
    compose(&d, &p, &["down", "-t", "1"]).ok();
}

#[test]
fn compose_v2_and_berth_manage_each_others_projects() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new("compat", TWO);
    // Up with Compose v2, then berth sees the project unchanged and takes it down.
    compose_v2(&d, &p.dir, &["up", "-d"]).ok();
    let by_v2 = ids(&d, "compat");
    assert_eq!(by_v2.len(), 2);
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert_eq!(
        ids(&d, "compat"),
        by_v2,
        "berth must not recreate: {}",
        out.stderr
    );
    assert!(d.berth(["compose", "ls"]).ok().contains("compat"));
    compose(&d, &p, &["down", "-t", "1"]).ok();
    assert!(ids(&d, "compat").is_empty());
    // And the other way round.
    compose(&d, &p, &["up", "-d"]).ok();
    let by_berth = ids(&d, "compat");
    let out = compose_v2(&d, &p.dir, &["up", "-d"]);
    out.ok();
    assert_eq!(
        ids(&d, "compat"),
        by_berth,
        "Compose v2 must not recreate: {}",
        out.stderr
    );
    let ps = compose_v2(&d, &p.dir, &["ps", "--services"]).ok();
    assert_eq!(ps, "web\nworker");
    compose_v2(&d, &p.dir, &["down", "-t", "1"]).ok();
    assert!(ids(&d, "compat").is_empty());
}

/// An HTTP/1.0 GET of `/index.html` at `addr`; the body, or None when nothing answers.
fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// `nc` from inside `container` to `host:port`, the last line of the HTTP answer.
fn nc_get(d: &Daemon, container: &str, host: &str) -> Out {
    let req =
        format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 8080 | tail -n 1");
    d.berth(["exec", container, "sh", "-c", &req])
}

#[test]
fn default_and_user_networks_aliases_addresses_and_published_ports() {
    let d = Daemon::start();
    d.load_busybox();
    let port = common::free_port();
    let back = d.block.subnet(2);
    let fixed = back.replace(".0/24", ".10");
    let p = Proj::new(
        "netp",
        &format!(
            r#"
services:
  web:
    image: busybox
    command: httpd -f -p 8080 -h /www
    volumes:
      - ./www:/www:ro
    ports:
      - "${{WEB_PORT}}:8080"
    networks:
      default:
      back:
        aliases: [api]
        ipv4_address: {fixed}
  client:
    image: busybox
    command: sleep 3600
    networks: [back]
  front:
    image: busybox
    command: sleep 3600
networks:
  back:
    ipam:
      config:
        - subnet: {back}
"#
        ),
    );
    std::fs::create_dir_all(p.dir.join("www")).unwrap();
    std::fs::write(p.dir.join("www/index.html"), "hello-compose\n").unwrap();
    std::fs::write(p.dir.join(".env"), format!("WEB_PORT={port}\n")).unwrap();
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("Network netp_default  Created")
            && out.stderr.contains("Network netp_back  Created"),
        "{}",
        out.stderr
    );
    // The networks carry Compose's labels.
    let labels = d
        .berth(["network", "inspect", "-f", "{{json .Labels}}", "netp_back"])
        .ok();
    let l: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(l["com.docker.compose.project"], "netp");
    assert_eq!(l["com.docker.compose.network"], "back");
    assert_eq!(
        d.berth([
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            "netp_back"
        ])
        .ok(),
        back
    );

    // The fixed address and the aliases on `back`, and an address on the default network.
    let on = |c: &str, net: &str, what: &str| {
        inspect(
            &d,
            c,
            &format!("{{{{json (index .NetworkSettings.Networks \"{net}\").{what}}}}}"),
        )
    };
    assert_eq!(
        on("netp-web-1", "netp_back", "IPAddress"),
        format!("\"{fixed}\"")
    );
    let aliases: Vec<String> =
        serde_json::from_str(&on("netp-web-1", "netp_back", "Aliases")).unwrap();
    for a in ["netp-web-1", "web", "api"] {
        assert!(aliases.iter().any(|x| x == a), "{a} not in {aliases:?}");
    }
    let web_default: String =
        serde_json::from_str(&on("netp-web-1", "netp_default", "IPAddress")).unwrap();
    assert!(!web_default.is_empty());
    assert_eq!(
        inspect(&d, "netp-client-1", "{{len .NetworkSettings.Networks}}"),
        "1"
    );

    // The published port answers on the host, and `port`/`ps` show it.
    let body = common::wait_for(Duration::from_secs(10), || {
        http_get(&format!("127.0.0.1:{port}")).filter(|b| b == "hello-compose\n")
    });
    assert!(body.is_some(), "127.0.0.1:{port} does not answer");
    assert_eq!(
        compose(&d, &p, &["port", "web", "8080"]).ok(),
        format!("0.0.0.0:{port}")
    );
    let ps = compose(&d, &p, &["ps", "web"]).ok();
    assert!(ps.contains(&format!("0.0.0.0:{port}->8080/tcp")), "{ps}");

    // Containers on a shared network reach each other; the networks are isolated.
    assert_eq!(nc_get(&d, "netp-client-1", &fixed).ok(), "hello-compose");
    assert_eq!(
        nc_get(&d, "netp-front-1", &web_default).ok(),
        "hello-compose"
    );
    let client_ip: String =
        serde_json::from_str(&on("netp-client-1", "netp_back", "IPAddress")).unwrap();
    let o = d.berth([
        "exec",
        "netp-front-1",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        &client_ip,
    ]);
    assert_ne!(
        o.status, 0,
        "front must not reach client on another network"
    );

    // Unchanged: nothing recreated, networks kept.
    let before = ids(&d, "netp");
    compose(&d, &p, &["up", "-d"]).ok();
    assert_eq!(ids(&d, "netp"), before);

    let out = compose(&d, &p, &["down", "-t", "1"]);
    out.ok();
    assert!(
        out.stderr.contains("Network netp_back  Removed"),
        "{}",
        out.stderr
    );
    let nets = d.berth(["network", "ls", "--format", "{{.Name}}"]).ok();
    assert!(!nets.contains("netp_"), "{nets}");
    assert!(ids(&d, "netp").is_empty());
}

/// Debian's docker-compose 1.29 (Compose v1) with `args` in `dir`, against `d`.
fn compose_v1(d: &Daemon, dir: &Path, args: &[&str]) -> Out {
    let out = std::process::Command::new("timeout")
        .args(["-k", "5", "180", "docker-compose"])
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .output()
        .expect("run docker-compose (scripts/install-deps installs it)");
    Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compose v1 brings a project up on berth, sees it unchanged, lists it and takes it down;
/// berth compose sees v1's containers through the same labels. (The services use
/// `network_mode: none`: v1 disconnects and reconnects a created container's only network
/// before the start, which berth refuses yet — reported to net2.)
#[test]
fn docker_compose_v1_drives_berth() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new(
        "vone",
        r#"
version: "3.8"
services:
  web:
    image: busybox
    network_mode: none
    command: sleep 3600
  worker:
    image: busybox
    network_mode: none
    command: sleep 3600
    depends_on: [web]
"#,
    );
    let out = compose_v1(&d, &p.dir, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("Creating vone_worker_1"),
        "{}",
        out.stderr
    );
    let names: Vec<String> = ids(&d, "vone").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["vone_web_1", "vone_worker_1"]);
    assert_eq!(inspect(&d, "vone_worker_1", "{{.State.Running}}"), "true");
    let labels: serde_json::Value =
        serde_json::from_str(&inspect(&d, "vone_web_1", "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["com.docker.compose.project"], "vone");
    assert_eq!(labels["com.docker.compose.version"], "1.29.2");
    let ps = compose_v1(&d, &p.dir, &["ps"]).ok();
    let up = ps
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == "Up"))
        .count();
    assert_eq!(up, 2, "{ps}");
    // Unchanged: v1 leaves the containers alone.
    let before = ids(&d, "vone");
    let out = compose_v1(&d, &p.dir, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("vone_web_1 is up-to-date"),
        "{}",
        out.stderr
    );
    assert_eq!(ids(&d, "vone"), before);
    // A changed service is recreated by v1.
    p.write(&p.file_text().replacen("sleep 3600", "sleep 3601", 1));
    compose_v1(&d, &p.dir, &["up", "-d"]).ok();
    assert_eq!(
        inspect(&d, "vone_web_1", "{{json .Config.Cmd}}"),
        r#"["sleep","3601"]"#
    );
    // berth compose sees v1's containers through the same labels.
    assert_eq!(compose(&d, &p, &["ps", "--services"]).ok(), "web\nworker");
    compose_v1(&d, &p.dir, &["down", "-t", "1"]).ok();
    assert!(ids(&d, "vone").is_empty());
}

#[test]
fn attached_up_prefixes_output_and_aborts_on_exit() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new(
        "att",
        r#"
services:
  short:
    image: busybox
    network_mode: none
    command: sh -c "echo hello-short; sleep 2; exit 7"
  long:
    image: busybox
    network_mode: none
    command: sh -c "echo hello-long; exec sleep 3600"
"#,
    );
    let out = compose(&d, &p, &["up", "--abort-on-container-exit", "-t", "1"]);
    assert_eq!(out.status, 7, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"short-1  | hello-short"), "{}", out.stdout);
    assert!(lines.contains(&"long-1   | hello-long"), "{}", out.stdout);
    assert!(
        lines.contains(&"short-1 exited with code 7"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Aborting on container exit..."),
        "{}",
        out.stdout
    );
    // The others were stopped.
    assert_eq!(inspect(&d, "att-long-1", "{{.State.Running}}"), "false");

    // --exit-code-from takes the named service's code (here the one stopped by the abort).
    let out = compose(&d, &p, &["up", "--exit-code-from", "short", "-t", "1"]);
    assert_eq!(out.status, 7, "{}{}", out.stdout, out.stderr);
    let out = compose(&d, &p, &["up", "--exit-code-from", "long", "-t", "1"]);
    assert_eq!(out.status, 137, "{}{}", out.stdout, out.stderr);
    // Compose v2 prints the same prefixes for the same project.
    let v2 = compose_v2(&d, &p.dir, &["logs", "--no-color", "short"]).ok();
    let ours = compose(&d, &p, &["logs", "--no-color", "short"]).ok();
    assert_eq!(ours, v2);
    compose(&d, &p, &["down", "-t", "1"]).ok();
}

#[test]
fn run_one_off_containers() {
    let d = Daemon::start();
    d.load_busybox();
    let port = common::free_port();
    let p = Proj::new(
        "runp",
        &format!(
            r#"
services:
  db:
    image: busybox
    command: sleep 3600
  app:
    image: busybox
    command: echo from-service
    environment:
      FOO: base
    ports:
      - "{port}:8080"
    depends_on: [db]
"#
        ),
    );
    // Attached, removed afterwards, its exit status passed on; the dependency is started.
    let out = compose(
        &d,
        &p,
        &[
            "run",
            "--rm",
            "-e",
            "BAR=x",
            "app",
            "sh",
            "-c",
            "echo $FOO $BAR; exit 3",
        ],
    );
    assert_eq!(out.status, 3, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim_end(), "base x", "{}", out.stderr);
    assert_eq!(inspect(&d, "runp-db-1", "{{.State.Running}}"), "true");
    let names: Vec<String> = ids(&d, "runp").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["runp-db-1"], "the --rm container must be gone");

    // The service's command by default; its ports are not published.
    let out = compose(&d, &p, &["run", "app"]);
    assert_eq!(out.stdout, "from-service\n", "{}", out.stderr);

    // Detached: the ID is printed; Compose's one-off labels and name.
    let id = compose(
        &d,
        &p,
        &[
            "run",
            "-d",
            "--service-ports",
            "app",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/",
        ],
    )
    .ok();
    assert_eq!(id.len(), 64, "{id}");
    let labels: serde_json::Value =
        serde_json::from_str(&inspect(&d, &id, "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["com.docker.compose.oneoff"], "True");
    assert_eq!(labels["com.docker.compose.service"], "app");
    assert!(labels.get("com.docker.compose.container-number").is_none());
    let slug = labels["com.docker.compose.slug"].as_str().unwrap();
    assert_eq!(slug.len(), 64);
    assert_eq!(
        inspect(&d, &id, "{{.Name}}"),
        format!("/runp-app-run-{}", &slug[..12])
    );
    // --service-ports: the service's ports are published.
    let answered = common::wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(answered.is_some(), "127.0.0.1:{port} does not answer");

    // --no-deps: nothing else is created.
    compose(&d, &p, &["down", "-t", "1"]).ok();
    assert!(
        ids(&d, "runp").is_empty(),
        "down removes one-off containers"
    );
    let out = compose(&d, &p, &["run", "--rm", "--no-deps", "app", "true"]);
    out.ok();
    assert!(ids(&d, "runp").is_empty());
    compose(&d, &p, &["down", "-t", "1"]).ok();
}

#[test]
fn push_pushes_the_images_of_built_services() {
    let reg = common::DockerRegistry::start(&[("me", "pw-compose")]);
    let a = reg.addr();
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new(
        "pushp",
        &format!(
            r#"
services:
  app:
    image: {a}/me/app:1
    build:
      context: .
      tags: ["{a}/me/app:extra"]
  db:
    image: busybox
"#
        ),
    );
    std::fs::write(p.dir.join("Dockerfile"), "FROM busybox\n").unwrap();
    for t in ["1", "extra"] {
        d.berth(["tag", "busybox", &format!("{a}/me/app:{t}")]).ok();
    }
    // Not logged in: the registry's refusal, exit 1.
    let o = compose(&d, &p, &["push"]);
    assert_eq!(o.status, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("no basic auth credentials"),
        "{}",
        o.stderr
    );
    // With the credentials `berth login` stored.
    d.berth(["login", "-u", "me", "-p", "pw-compose", &a]).ok();
    let o = compose(&d, &p, &["push"]);
    o.ok();
    assert!(o.stderr.contains(" db Skipped"), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!(" {a}/me/app:1 Pushed"))
            && o.stderr.contains(&format!(" {a}/me/app:extra Pushed")),
        "{}",
        o.stderr
    );
    assert_eq!(reg.requests("PUT", "/v2/me/app/manifests/1"), 1);
    assert_eq!(reg.requests("PUT", "/v2/me/app/manifests/extra"), 1);
}

#[test]
fn config_no_interpolate_keeps_variables() {
    let d = Daemon::start();
    let p = Proj::new(
        "noint",
        "services:\n  app:\n    image: \"busybox:${TAG:-latest}\"\n    command: echo $$HOME ${X}\n",
    );
    let o = compose(&d, &p, &["config", "--no-interpolate"]);
    let out = o.ok();
    assert!(out.contains("image: busybox:${TAG:-latest}"), "{out}");
    assert!(out.contains("${X}"), "{out}");
    assert!(!o.stderr.contains("variable is not set"), "{}", o.stderr);
    let out = compose(&d, &p, &["config"]).ok();
    assert!(out.contains("image: busybox:latest"), "{out}");
}

#[test]
fn service_healthy_waits_for_the_first_passing_probe() {
    let d = Daemon::start();
    d.load_busybox();
    let p = Proj::new(
        "hlth",
        r#"
services:
  db:
    image: busybox
    network_mode: none
    command: sh -c "sleep 2; touch /tmp/ready; exec sleep 3600"
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 500ms
      retries: 20
  app:
    image: busybox
    network_mode: none
    command: sleep 3600
    depends_on:
      db:
        condition: service_healthy
"#,
    );
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr.contains("Container hlth-db-1  Healthy"),
        "{}",
        out.stderr
    );
    assert_eq!(
        inspect(&d, "hlth-db-1", "{{.State.Health.Status}}"),
        "healthy"
    );
    let log: serde_json::Value =
        serde_json::from_str(&inspect(&d, "hlth-db-1", "{{json .State.Health.Log}}")).unwrap();
    let first_pass = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ExitCode"] == 0)
        .expect("a passing probe")["End"]
        .as_str()
        .unwrap()
        .to_string();
    let started = inspect(&d, "hlth-app-1", "{{.State.StartedAt}}");
    let ts = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    assert!(
        ts(&started) > ts(&first_pass),
        "app started at {started}, before db's first passing probe at {first_pass}"
    );
    // --wait returns once everything is running and healthy.
    compose(&d, &p, &["up", "-d", "--wait", "--force-recreate"]).ok();
    assert_eq!(
        inspect(&d, "hlth-db-1", "{{.State.Health.Status}}"),
        "healthy"
    );
    compose(&d, &p, &["down", "-t", "1"]).ok();

    // A dependency that turns unhealthy fails the dependent's start.
    let bad = Proj::new(
        "hbad",
        &p.file_text()
            .replace("test -f /tmp/ready", "exit 1")
            .replace("retries: 20", "retries: 2"),
    );
    let out = compose(&d, &bad, &["up", "-d"]);
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("dependency failed to start: container hbad-db-1 is unhealthy"),
        "{}",
        out.stderr
    );
    assert_eq!(inspect(&d, "hbad-app-1", "{{.State.Status}}"), "created");
    compose(&d, &bad, &["down", "-t", "1"]).ok();
}

/// The project's compose file, verbatim: `crane-app` built from the Dockerfile in `.`, named
/// `crane-server`, working in `/crane-app`, publishing 7070:8080, started only after
/// `crane-mysql` is healthy. The database image is a local stand-in built from busybox (tagged
/// `mysql:8.0`, so the file is unchanged): it answers on 3306 after a few seconds and ships a
/// `mysqladmin` whose `ping` probes that port. The app records what `crane-mysql:3306` answered
/// (reached by name) in a file its httpd serves.
const CRANE: &str = r#"
services:
  crane-app:
    build: .
    container_name: crane-server
    working_dir: /crane-app
    ports:
      - "7070:8080"
    depends_on:
      crane-mysql:
        condition: service_healthy
  crane-mysql:
    image: mysql:8.0
    environment:
      MYSQL_ROOT_PASSWORD: crane
      MYSQL_DATABASE: crane
    healthcheck:
      test: ["CMD", "mysqladmin", "ping", "-h", "localhost"]
      interval: 1s
      timeout: 2s
      retries: 30
"#;

const CRANE_APP_DOCKERFILE: &str = r#"FROM busybox
WORKDIR /crane-app
COPY index.html ./
EXPOSE 8080
CMD ["sh", "-c", "nc -w 3 crane-mysql 3306 </dev/null > db.txt; exec httpd -f -p 8080 -h /crane-app"]
"#;

const MYSQL_STANDIN_DOCKERFILE: &str = r#"FROM busybox
RUN printf '#!/bin/sh\nnc -w 1 127.0.0.1 3306 </dev/null >/dev/null\n' > /bin/mysqladmin && chmod 755 /bin/mysqladmin
EXPOSE 3306
CMD ["sh", "-c", "sleep 3; exec nc -ll -p 3306 -e echo mysql-standin"]
"#;

fn http_path(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Checks a running crane project (whichever tool brought it up): ordering, the published
/// port, the database reached by name, the working directory.
fn check_crane(d: &Daemon, db: &str) {
    assert_eq!(inspect(d, db, "{{.State.Health.Status}}"), "healthy");
    let log: serde_json::Value =
        serde_json::from_str(&inspect(d, db, "{{json .State.Health.Log}}")).unwrap();
    let first_pass = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ExitCode"] == 0)
        .expect("a passing probe")["End"]
        .as_str()
        .unwrap()
        .to_string();
    let started = inspect(d, "crane-server", "{{.State.StartedAt}}");
    let ts = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    assert!(
        ts(&started) > ts(&first_pass),
        "crane-server started at {started}, before crane-mysql's first passing probe at {first_pass}"
    );
    assert_eq!(
        inspect(d, "crane-server", "{{.Config.WorkingDir}}"),
        "/crane-app"
    );
    assert_eq!(
        inspect(
            d,
            "crane-server",
            "{{index .Config.Labels \"com.docker.compose.service\"}}"
        ),
        "crane-app"
    );
    let index = common::wait_for(Duration::from_secs(20), || {
        http_path("127.0.0.1:7070", "/index.html")
    });
    assert_eq!(index.as_deref(), Some("crane says hello\n"));
    let db_answer = http_path("127.0.0.1:7070", "/db.txt");
    assert_eq!(db_answer.as_deref(), Some("mysql-standin\n"));
}

/// After `down`: no container of the project and no network left.
fn check_crane_gone(d: &Daemon, project: &str) {
    assert!(ids(d, project).is_empty(), "{:?}", ids(d, project));
    let nets = d
        .berth([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .ok();
    assert!(nets.trim().is_empty(), "networks left: {nets}");
    assert!(http_path("127.0.0.1:7070", "/index.html").is_none());
}

#[test]
fn the_projects_compose_file_runs_verbatim_with_berth_and_compose_v2() {
    let d = Daemon::start();
    d.load_busybox();
    let standin = tempfile::tempdir().unwrap();
    std::fs::write(standin.path().join("Dockerfile"), MYSQL_STANDIN_DOCKERFILE).unwrap();
    d.berth([
        "build",
        "-q",
        "-t",
        "mysql:8.0",
        &standin.path().to_string_lossy(),
    ])
    .ok();
    let p = Proj::new("crane", CRANE);
    std::fs::write(p.dir.join("Dockerfile"), CRANE_APP_DOCKERFILE).unwrap();
    std::fs::write(p.dir.join("index.html"), "crane says hello\n").unwrap();

    // berth compose.
    let out = compose(&d, &p, &["up", "-d"]);
    out.ok();
    assert!(
        out.stderr
            .contains("Container crane-crane-mysql-1  Healthy"),
        "{}",
        out.stderr
    );
    check_crane(&d, "crane-crane-mysql-1");
    let ps = compose(&d, &p, &["ps", "--services"]).ok();
    assert_eq!(ps, "crane-app\ncrane-mysql");
    compose(&d, &p, &["down", "-t", "1"]).ok();
    check_crane_gone(&d, "crane");

    // Docker Compose v2 against berth daemon builds through the classic /build. It takes
    // that path only when BuildKit is off (Docker CLI 28 assumes BuildKit for every Linux
    // daemon, whatever /_ping says), hence DOCKER_BUILDKIT=0.
    d.berth(["rmi", "crane-crane-app"]).ok();
    let out = compose_v2_env(&d, &p.dir, &["up", "-d"], &[("DOCKER_BUILDKIT", "0")]);
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    check_crane(&d, "crane-crane-mysql-1");
    compose_v2(&d, &p.dir, &["down", "-t", "1"]).ok();
    check_crane_gone(&d, "crane");

    // docker-compose 1.29 is not run on this file yet: it creates each container on the
    // project network, disconnects it and connects it again with its aliases, and berth's
    // engine turns a created container whose last network is disconnected into `none`, so
    // the connect is refused ("container sharing network namespace ..."). Docker keeps the
    // network mode string there. (`docker_compose_v1_drives_berth` covers v1 on
    // `network_mode: none` projects.)
}

/// A published port already taken on `up`: the error names the service's container and the
/// port, and the services already started stay running.
#[test]
fn port_conflict_on_up_names_service_and_port_and_keeps_started_services() {
    let d = Daemon::start();
    d.load_busybox();
    let port = common::free_port();
    let p = Proj::new(
        "pconf",
        &format!(
            r#"
services:
  first:
    image: busybox
    command: httpd -f -p 8080
    ports:
      - "{port}:8080"
  second:
    image: busybox
    command: httpd -f -p 8080
    ports:
      - "{port}:8080"
    depends_on: [first]
"#
        ),
    );
    let out = compose(&d, &p, &["up", "-d"]);
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("pconf-second-1")
            && out.stderr.contains(&port.to_string())
            && out.stderr.contains("port is already allocated"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Container pconf-first-1  Started"),
        "{}",
        out.stderr
    );
    assert_eq!(inspect(&d, "pconf-first-1", "{{.State.Status}}"), "running");
    assert_ne!(
        inspect(&d, "pconf-second-1", "{{.State.Status}}"),
        "running"
    );
    let ps = compose(&d, &p, &["ps", "--services"]).ok();
    assert_eq!(ps, "first");
    compose(&d, &p, &["down", "-t", "1"]).ok();
}

/// A build context that does not exist is named, and nothing is created.
#[test]
fn missing_build_context_is_named() {
    let d = Daemon::start();
    let p = Proj::new(
        "nctx",
        r#"
services:
  app:
    build: ./no-such-dir
    network_mode: none
"#,
    );
    let out = compose(&d, &p, &["up", "-d"]);
    assert_ne!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("no-such-dir"), "{}", out.stderr);
    assert!(ids(&d, "nctx").is_empty());
}
