fn main() {
    roomcast_frontend::run();
}
