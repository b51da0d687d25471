use crate::common::TestEnv;

#[test]
fn init_add_ready_done() {
    let env = TestEnv::new();
    let id = env
        .wg(&["add", "Write the parser"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id, "write-the-parser");
    let _ = env.wg(&["add", "Test it", "--after", &id]).ok();
    let ready = env.wg(&["ready", "--json"]).ok().json();
    assert_eq!(ready.as_array().unwrap().len(), 1);
    let _ = env.wg(&["done", &id]).ok();
    let ready = env.wg(&["ready", "--json"]).ok().json();
    assert_eq!(ready[0]["id"], "test-it");
}
