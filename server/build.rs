// The web app is embedded from clients/web/dist (see src/web.rs): rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../clients/web/dist");
}
