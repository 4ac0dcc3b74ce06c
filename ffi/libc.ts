/**
 * The libc symbols ctnl binds with `Deno.dlopen`, and the loader.
 *
 * Every call here but `poll_async` is synchronous and runs on the calling
 * JavaScript thread, so `errno` read right after a failing call belongs to
 * that call. `poll_async` only waits for readiness; the receive that follows
 * runs here, with `MSG_DONTWAIT`.
 *
 * @module
 */

/** The libc symbol table; each entry carries its C prototype. */
export const LIBC_SYMBOLS = {
  /** int socket(int domain, int type, int protocol); */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int bind(int fd, const struct sockaddr *addr, socklen_t len); */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** int getsockname(int fd, struct sockaddr *addr, socklen_t *len); */
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  /** ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen); */
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  /** ssize_t recvmsg(int fd, struct msghdr *msg, int flags); */
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** int setsockopt(int fd, int level, int name, const void *val, socklen_t len); */
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  /** int getsockopt(int fd, int level, int name, void *val, socklen_t *len); */
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /** int fcntl(int fd, int cmd, int arg); (ffi/ahead.ts: F_DUPFD_CLOEXEC) */
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int close(int fd); */
  close: { parameters: ["i32"], result: "i32" },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout); */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  /**
   * int poll(struct pollfd *fds, nfds_t nfds, int timeout); on Deno's
   * blocking pool, returning a Promise: to wait for readiness without
   * holding the event loop (its errno is another thread's: not read).
   */
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** int eventfd(unsigned int initval, int flags); */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t count); */
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** ssize_t write(int fd, const void *buf, size_t count); */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** int setns(int fd, int nstype); */
  setns: { parameters: ["i32", "i32"], result: "i32" },
  /** int open(const char *path, int flags, ...); (mode unused: O_RDONLY) */
  open: { parameters: ["buffer", "i32"], result: "i32" },
  /** int uname(struct utsname *buf); */
  uname: { parameters: ["buffer"], result: "i32" },
  /**
   * int recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags, struct timespec *t);
   * on Deno's blocking pool, returning a Promise: ffi/ahead.ts's receive-ahead
   * for async dumps (its errno is another thread's: not read).
   */
  recvmmsg_async: {
    name: "recvmmsg",
    parameters: ["i32", "pointer", "u32", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** int *__errno_location(void); */
  __errno_location: { parameters: [], result: "pointer" },
  /** char *strerror(int errnum); */
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libc with {@link LIBC_SYMBOLS}. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let loaded: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * Binds one symbol: a `Deno.dlopen` of libc with that symbol alone, so that a
 * command pays only for the calls it makes (each bound symbol costs its own
 * call stub; binding all of them at once costs ~6 ms of start-up here).
 */
function bind<K extends keyof typeof LIBC_SYMBOLS>(name: K): Libc[K] {
  let lib: Deno.DynamicLibrary<Pick<typeof LIBC_SYMBOLS, K>>;
  try {
    lib = Deno.dlopen("libc.so.6", { [name]: LIBC_SYMBOLS[name] } as Pick<typeof LIBC_SYMBOLS, K>);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
    ) {
      throw error;
    }
    throw new Error("Cannot load libc.so.6", { cause: error });
  }
  return (lib.symbols as Libc)[name];
}

/**
 * Returns libc's symbols ({@link LIBC_SYMBOLS}), each bound on first use and
 * then kept: the first access of a symbol replaces its getter with the
 * function itself.
 *
 * A missing `--allow-ffi` permission surfaces as Deno's own permission error,
 * untouched (its message says which flag to add); any other failure is wrapped
 * with the reason as `cause`.
 */
export function libc(): Libc {
  if (loaded !== undefined) return loaded;
  if (Deno.build.os !== "linux") {
    throw new Error(
      `Cannot open netlink: conntrack over netlink needs Linux, this is ${Deno.build.os}`,
    );
  }
  const symbols = {} as Libc;
  for (const name of Object.keys(LIBC_SYMBOLS) as (keyof typeof LIBC_SYMBOLS)[]) {
    Object.defineProperty(symbols, name, {
      configurable: true,
      enumerable: true,
      get() {
        const fn = bind(name);
        Object.defineProperty(symbols, name, { value: fn, enumerable: true });
        return fn;
      },
    });
  }
  const ptr = symbols.__errno_location();
  if (ptr === null) throw new Error("Cannot load libc.so.6: __errno_location returned NULL");
  errnoView = new Deno.UnsafePointerView(ptr);
  loaded = symbols;
  return loaded;
}

/** Reads `errno` of the calling thread; call it right after the failing call. */
export function errno(): number {
  // The JS thread is the only thread these synchronous calls run on, so the
  // errno location found at load time stays valid.
  return errnoView === undefined ? 0 : errnoView.getInt32(0);
}

/** Returns libc's `strerror` text for an errno value. */
export function strerror(code: number): string {
  const ptr = libc().strerror(code);
  return ptr === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(ptr);
}

/** Returns the running kernel's release (`uname -r`), e.g. `"6.18.44"`. */
export function kernelRelease(): string {
  // struct utsname: six fields of 65 bytes; release is the third.
  const buf = new Uint8Array(65 * 6);
  if (libc().uname(buf) !== 0) return "";
  const field = buf.subarray(130, 195);
  const nul = field.indexOf(0);
  return new TextDecoder().decode(field.subarray(0, nul < 0 ? 65 : nul));
}
