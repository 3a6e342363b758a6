// ThreadSanitizer suppressions for Debian's system libraries, compiled into
// every binary that links them (see the `deps` of system_libs in WORKSPACE).
//
// gRPC, gpr, Abseil, protobuf and OpenSSL come from Debian as shared libraries built
// without TSan. TSan therefore cannot see the synchronisation inside them
// (absl::Mutex, gRPC's event engine) and reports races between accesses it
// only half sees: e.g. gRPC's epoll_wait against its own epoll_create1, or
// absl's deadlock-detection graph. A report is suppressed only when one of
// its stacks runs through such a library, or through gRPC's header-inline
// C++ API (functions in namespace grpc::, compiled into our binaries but
// operating on memory that gRPC's uninstrumented threads hand over); races
// entirely inside xenchan's own code are still reported and fail the build.
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
         // OpenSSL, under gRPC's TLS (and xenchand's certificate parsing).
         "race:libcrypto.so\n"
         "race:libssl.so\n"
         "race:^grpc::\n"
         "deadlock:libgrpc.so\n"
         "deadlock:libabsl_\n"
         "signal:libgrpc.so\n";
}
