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
//   ^grpc::internal:: (by function, not library): gRPC's call machinery
//     that is header-inline, so compiled (instrumented) into our binaries,
//     but operates on call state that gRPC's uninstrumented threads wrote
//     (e.g. ServerCallbackReaderWriterImpl::Write or
//     ServerCallbackUnaryImpl::Finish reading what the executor thread
//     allocated; the other stack shows only malloc). Without it every
//     StartWrite/Finish from the scheduler is reported.
//   FakeConsoleFrontend::GuestWritePage (by function): in the in-memory
//     platform the test's guest and the engine share one process, so TSan
//     sees the guest's writes to the shared ring page (another domain's CPU
//     on a real host) meet the engine's reads. That is the protocol working
//     as designed against a hostile peer, not a race in our code; every
//     scribble in tests goes through this one function.
// absl::Status's reference count is not suppressed but made visible: see
// status_refcount.cc.
// `deadlock:` and `signal:` cover lock-order and signal reports that start
// in libgrpc or Abseil for the same reason.
//
// An earlier `race:^grpc::` also hid every report with a frame of gRPC's
// public inline API (the reactor bases our shells derive from). It is gone:
// the reactors' logic (server/*_logic.h) has no gRPC frame at all and is
// tested from plain threads (tests/server/*_logic_test.cc), so races between
// it, the engine and the scheduler are reported, and
// //tests/server:tsan_planted_race_test proves that they are. A logic frame
// never matches ^grpc::internal::, so that suppression only hides a report
// whose racing access itself is inside gRPC's internals.
extern "C" const char* __tsan_default_suppressions() {
  return "race:xenchan::FakeConsoleFrontend::GuestWritePage\n"
         "race:libgrpc.so\n"
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
         "race:^grpc::internal::\n"
         "deadlock:libgrpc.so\n"
         "deadlock:libabsl_\n"
         "signal:libgrpc.so\n";
}
