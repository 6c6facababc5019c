//! Benchmark peer: an OTLP/gRPC receiver (the tests' receiver, built from the
//! official protocol definitions) on a free loopback port. Prints its endpoint
//! on the first line of stdout, then serves until killed.

fn main() {
    let receiver = eunomia_tests::otlp::OtlpReceiver::start();
    println!("{}", receiver.endpoint());
    loop {
        std::thread::park();
    }
}
