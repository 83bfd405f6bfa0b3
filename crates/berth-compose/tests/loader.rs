//! The loader end to end on files in temp dirs: discovery, names, env files, overrides,
//! profiles, include, extends, and every kind of bad input with the error Compose users get.

use std::collections::BTreeMap;
use std::path::Path;

use berth_compose::{load, LoadOptions};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn opts(dir: &Path, env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        os_env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        cwd: dir.to_path_buf(),
        ..Default::default()
    }
}

fn load_err(files: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), files);
    load(&opts(tmp.path(), &[])).unwrap_err().to_string()
}

#[test]
fn discovery_in_parent_and_name_from_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Crane App");
    write(
        &root,
        &[
            (
                "docker-compose.yml",
                "services:\n  a:\n    image: busybox\n",
            ),
            (
                "docker-compose.override.yml",
                "services:\n  a:\n    command: [true]\n",
            ),
            ("sub/dir/.keep", ""),
        ],
    );
    let l = load(&opts(&root.join("sub/dir"), &[])).unwrap();
    assert_eq!(l.project.name, "craneapp");
    assert_eq!(l.project.config_files.len(), 2);
    assert_eq!(
        l.project.services["a"].command,
        Some(vec!["true".to_string()])
    );
    let tmp2 = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&opts(tmp2.path(), &[])).unwrap_err().to_string(),
        "no configuration file provided: not found"
    );
}

#[test]
fn project_name_precedence_and_validation() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        &[(
            "compose.yaml",
            "name: fromfile\nservices:\n  a:\n    image: busybox\n",
        )],
    );
    assert_eq!(
        load(&opts(tmp.path(), &[])).unwrap().project.name,
        "fromfile"
    );
    assert_eq!(
        load(&opts(tmp.path(), &[("COMPOSE_PROJECT_NAME", "fromenv")]))
            .unwrap()
            .project
            .name,
        "fromenv"
    );
    let mut o = opts(tmp.path(), &[("COMPOSE_PROJECT_NAME", "fromenv")]);
    o.project_name = Some("flag".into());
    assert_eq!(load(&o).unwrap().project.name, "flag");
    o.project_name = Some("Bad Name".into());
    assert!(load(&o)
        .unwrap_err()
        .to_string()
        .starts_with("invalid project name \"Bad Name\""));
}

#[test]
fn env_files_and_interpolation() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        &[
            (
                "compose.yaml",
                "services:\n  a:\n    image: busybox:${TAG}\n    environment:\n      FROM_OS: ${OSVAR}\n      DEF: ${UNSET:-dflt}\n      DOLLAR: $$HOME\n      NESTED: ${UNSET:-${TAG}-x}\n      MISSING: ${NOPE}\n    env_file:\n      - a.env\n      - path: missing.env\n        required: false\n",
            ),
            (".env", "TAG=1.36\nOSVAR=from-dotenv\n"),
            ("a.env", "IN_FILE=yes\nFROM_OS=file-loses\n"),
        ],
    );
    let l = load(&opts(tmp.path(), &[("OSVAR", "from-os")])).unwrap();
    let a = &l.project.services["a"];
    assert_eq!(a.image, "busybox:1.36");
    let env = |k: &str| a.environment.get(k).cloned().flatten();
    assert_eq!(env("FROM_OS").as_deref(), Some("from-os"));
    assert_eq!(env("DEF").as_deref(), Some("dflt"));
    assert_eq!(env("DOLLAR").as_deref(), Some("$HOME"));
    assert_eq!(env("NESTED").as_deref(), Some("1.36-x"));
    assert_eq!(env("MISSING").as_deref(), Some(""));
    assert_eq!(env("IN_FILE").as_deref(), Some("yes"));
    assert!(l
        .warnings
        .iter()
        .any(|w| w == "The \"NOPE\" variable is not set. Defaulting to a blank string."));
    // A required env_file that is missing is an error naming it.
    write(
        tmp.path(),
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: busybox\n    env_file: nope.env\n",
        )],
    );
    let e = load(&opts(tmp.path(), &[])).unwrap_err().to_string();
    assert!(e.contains("nope.env"), "{e}");
}

#[test]
fn profiles_include_and_extends_from_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        &[
            (
                "compose.yaml",
                "include:\n  - lib/db.yaml\nservices:\n  app:\n    extends:\n      file: common.yaml\n      service: base\n    depends_on: [db]\n  debug:\n    image: busybox\n    profiles: [dev]\n",
            ),
            (
                "common.yaml",
                "services:\n  base:\n    image: busybox\n    volumes: ['./data:/data']\n",
            ),
            (
                "lib/db.yaml",
                "services:\n  db:\n    image: busybox\n    volumes: ['./dbdata:/var/lib/db']\n",
            ),
        ],
    );
    let l = load(&opts(tmp.path(), &[])).unwrap();
    let p = &l.project;
    assert!(p.services.contains_key("app") && p.services.contains_key("db"));
    assert!(!p.services.contains_key("debug"));
    assert!(p.disabled.contains_key("debug"));
    let root = tmp.path().to_string_lossy().into_owned();
    assert_eq!(p.services["app"].volumes[0].source, format!("{root}/data"));
    assert_eq!(
        p.services["db"].volumes[0].source,
        format!("{root}/lib/dbdata")
    );
    let mut o = opts(tmp.path(), &[]);
    o.profiles = vec!["dev".into()];
    assert!(load(&o).unwrap().project.services.contains_key("debug"));
    let l = load(&opts(tmp.path(), &[("COMPOSE_PROFILES", "dev")])).unwrap();
    assert!(l.project.services.contains_key("debug"));
}

#[test]
fn several_files_merge() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        &[
            (
                "a.yaml",
                "services:\n  web:\n    image: busybox\n    ports: ['80:80']\n    labels: {a: '1'}\n",
            ),
            (
                "b.yaml",
                "services:\n  web:\n    image: busybox:2\n    ports: ['81:81']\n    labels: [b=2]\n",
            ),
        ],
    );
    let mut o = opts(tmp.path(), &[]);
    o.files = vec!["a.yaml".into(), "b.yaml".into()];
    let p = load(&o).unwrap().project;
    let web = &p.services["web"];
    assert_eq!(web.image, "busybox:2");
    assert_eq!(web.ports.len(), 2);
    assert_eq!(web.labels.len(), 2);
    let o2 = opts(tmp.path(), &[("COMPOSE_FILE", "a.yaml:b.yaml")]);
    assert_eq!(load(&o2).unwrap().project.services["web"].ports.len(), 2);
}

// ---- item 8: bad input -------------------------------------------------------------------

#[test]
fn invalid_yaml_names_file_line_and_column() {
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n   ports: [\n",
    )]);
    assert!(e.contains("compose.yaml"), "{e}");
    assert!(e.contains("line 4, column"), "{e}");
}

#[test]
fn unknown_key_names_path_and_nearest_key() {
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    enviroment:\n      A: 1\n",
    )]);
    assert!(e.contains("compose.yaml:4:"), "{e}");
    assert!(e.contains("services.web.enviroment"), "{e}");
    assert!(e.contains("did you mean \"environment\""), "{e}");
    let e = load_err(&[("compose.yaml", "servics:\n  web:\n    image: busybox\n")]);
    assert!(e.contains("did you mean \"services\""), "{e}");
}

#[test]
fn wrong_types_are_located() {
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    privileged: maybe\n",
    )]);
    assert!(
        e.contains(":4:") && e.contains("services.web.privileged"),
        "{e}"
    );
    assert!(e.contains("must be a boolean"), "{e}");
}

#[test]
fn dependency_cycle_is_named() {
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [c]\n  c:\n    image: busybox\n    depends_on: [a]\n",
    )]);
    assert_eq!(e, "dependency cycle detected: a -> b -> c -> a");
}

#[test]
fn required_variable_message() {
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  a:\n    image: ${IMG:?set IMG to the image to run}\n",
    )]);
    assert!(
        e.ends_with("required variable IMG is missing a value: set IMG to the image to run"),
        "{e}"
    );
    assert!(e.contains("services.a.image"), "{e}");
}

#[test]
fn undefined_network_volume_and_service() {
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    networks: [front]\n",
    )]);
    assert_eq!(
        e,
        "service \"a\" refers to undefined network front: invalid compose project"
    );
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    volumes: ['data:/data']\n",
    )]);
    assert_eq!(
        e,
        "service \"a\" refers to undefined volume data: invalid compose project"
    );
    let e = load_err(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    depends_on: [nope]\n",
    )]);
    assert!(e.contains("depends on undefined service \"nope\""), "{e}");
    let e = load_err(&[("compose.yaml", "services:\n  a:\n    command: [x]\n")]);
    assert!(e.contains("neither an image nor a build context"), "{e}");
}
