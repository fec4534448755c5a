/*
 * Profiling aid for benchmark 3, never used by edgeup itself: an LD_PRELOAD
 * shim that turns every setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, x) into
 * TCP_NODELAY=1 (hyper's connector sets it explicitly, to 0). It answers
 * "what would the builtin client cost with Nagle's algorithm off?" without
 * changing src/: instant-acme's default hyper client leaves TCP_NODELAY off
 * and writes each request as two records (headers, then the JWS body), so
 * every ACME POST waits for the server's delayed ACK (~40 ms on Linux).
 *
 *   cc -shared -fPIC -O2 -o nodelay.so nodelay.c -ldl
 *   LD_PRELOAD=$PWD/nodelay.so edgeup renew --force
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    static int (*real)(int, int, int, const void *, socklen_t);
    if (!real)
        real = (int (*)(int, int, int, const void *, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
    if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        int one = 1;
        return real(fd, level, name, &one, sizeof one);
    }
    return real(fd, level, name, value, len);
}
