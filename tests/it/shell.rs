//! Shell completions and man pages, generated from the clap definitions, checked with the
//! real bash and man.

use std::process::Command;

use crate::common::{system_tool, to_run, TestEnv};

#[test]
fn every_shell_gets_a_completion_script() {
    let env = TestEnv::bare();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.wg(&["completions", shell]).ok();
        assert!(
            run.stdout.contains("service") && run.stdout.contains("completions"),
            "{shell} completion does not name the subcommands:\n{}",
            run.stdout
        );
    }
    let bad = env.wg(&["completions", "tcsh"]).code(2);
    assert!(bad.stderr.contains("bash"), "{bad}");
}

#[test]
fn bash_accepts_the_generated_bash_completion() {
    let env = TestEnv::bare();
    let script = env.wg(&["completions", "bash"]).ok().stdout;
    let path = env.tmp.path().join("wg.bash");
    std::fs::write(&path, &script).unwrap();
    let check = to_run(
        Command::new(system_tool("bash"))
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap(),
    );
    assert_eq!(check.code, 0, "bash -n rejects the completion:\n{check}");
    // Loaded for real, it completes a subcommand and a flag.
    let probe = format!(
        "source {}\nCOMP_WORDS=(wg serv); COMP_CWORD=1; COMP_LINE='wg serv'; COMP_POINT=7\n\
         _wg wg serv wg; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n\
         COMP_WORDS=(wg add --af); COMP_CWORD=2; COMP_LINE='wg add --af'; COMP_POINT=11\n\
         _wg wg --af add; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        path.display()
    );
    let run = to_run(
        Command::new(system_tool("bash"))
            .arg("-c")
            .arg(probe)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.lines().any(|l| l == "service"),
        "`wg serv<TAB>` should complete to service:\n{run}"
    );
    assert!(
        run.stdout.lines().any(|l| l == "--after"),
        "`wg add --af<TAB>` should complete to --after:\n{run}"
    );
}

fn render_man(page: &std::path::Path) -> String {
    let out = Command::new(system_tool("man"))
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    let run = to_run(out);
    assert_eq!(run.code, 0, "man -l {} failed:\n{run}", page.display());
    run.stdout
}

#[test]
fn man_renders_the_generated_pages() {
    let env = TestEnv::bare();
    let dir = env.tmp.path().join("man1");
    let run = env
        .wg(&["man", "--out", dir.to_str().unwrap(), "--json"])
        .ok();
    let pages: Vec<String> = run.json()["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for want in [
        "wg.1",
        "wg-add.1",
        "wg-service-start.1",
        "wg-top.1",
        "wg-man.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "no {want} in {pages:?}");
    }
    assert!(
        !pages.iter().any(|p| p.contains("mock-agent")),
        "hidden commands get no page: {pages:?}"
    );
    let add = render_man(&dir.join("wg-add.1"));
    assert!(add.contains("NAME") && add.contains("wg-add"), "{add}");
    assert!(add.contains("--after"), "the page lists the flags:\n{add}");
    let main = render_man(&dir.join("wg.1"));
    assert!(
        main.contains("SUBCOMMANDS") && main.contains("wg-top(1)"),
        "{main}"
    );

    // One page on stdout, the same bytes as the file.
    let printed = env.wg(&["man", "add"]).ok().stdout;
    assert_eq!(
        printed,
        std::fs::read_to_string(dir.join("wg-add.1")).unwrap()
    );
    let bad = env.wg(&["man", "nosuch"]).code(2);
    assert!(bad.stderr.contains("no command `nosuch`"), "{bad}");
}
