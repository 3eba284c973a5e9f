# Cross-compiling for 64-bit ARM Linux with Debian's gcc cross toolchain (g++-aarch64-linux-gnu);
# binaries run through qemu-user (qemu-aarch64), which CTest and gtest_discover_tests use as the
# emulator. Libraries come from Debian's multiarch arm64 packages (/usr/lib/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
# Static executables: under Debian 12's qemu-user 7.2 a dynamically linked aarch64 program hangs
# in its first pthread_create (a static one does not).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(NUMA_LIB /usr/lib/aarch64-linux-gnu/libnuma.a CACHE FILEPATH "libnuma, static (see above)")
