// ThreadSanitizer suppressions for Debian's system libraries, compiled into
// every binary that links them (see the `deps` of system_libs in WORKSPACE).
//
// Only what uninstrumented libraries force is suppressed. gRPC, gpr, Abseil,
// protobuf, upb, c-ares, RE2, prometheus-cpp and OpenSSL come from Debian as
// shared libraries built without TSan: TSan cannot see the synchronisation
// inside them (gRPC's event engine and completion queues, absl::Mutex,
// protobuf's arenas and descriptor pools, OpenSSL's locks) and reports races
// between accesses it only half sees. Each `race:` line below matches a
// report with a frame in that library in any of its stacks (the two
// accesses, and the creation stacks of the threads and of the memory):
//   libgrpc, libgrpc++, libgpr: gRPC's own threads and the memory it hands
//     to our reactions (their stacks start in libgrpc);
//   libabsl_: Abseil's non-inline code (synchronization, hash tables'
//     slow paths, the deadlock-detection graph);
//   libprotobuf, libupb: message and descriptor internals;
//   libcares, libre2: gRPC's resolver and its URI parsing;
//   libprometheus-cpp: the metrics registry and exposer threads;
//   libcrypto, libssl: OpenSSL under gRPC's TLS (and xenchand's
//     certificate parsing).
// `deadlock:` and `signal:` cover lock-order and signal reports that start
// in libgrpc or Abseil for the same reason.
//
// There is deliberately no suppression by function name (an earlier
// `race:^grpc::` hid every report with a frame of gRPC's header-inline C++
// API, i.e. every reactor). The reactors' logic has no gRPC frames: it is
// tested from plain threads (tests/server/*_logic_test.cc), so races
// between it, the engine and the scheduler are reported, and
// //tests/server:tsan_planted_race_test proves that they are.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc.so\n"
         "race:libgrpc++.so\n"
         "race:libgpr.so\n"
         "race:libabsl_\n"
         "race:libprotobuf.so\n"
         "race:libupb.so\n"
         "race:libcares.so\n"
         "race:libre2.so\n"
         "race:libprometheus-cpp\n"
         "race:libcrypto.so\n"
         "race:libssl.so\n"
         "deadlock:libgrpc.so\n"
         "deadlock:libabsl_\n"
         "signal:libgrpc.so\n";
}
