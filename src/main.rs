fn main() {
    println!("rawrxd");
}
