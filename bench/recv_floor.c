/*
 * The C floor of bench/dump_compare.ts: dump the conntrack table over
 * netlink, receive every datagram and count the entry messages, decode
 * nothing, print the count. Compiled by the benchmark (cc -O2).
 */
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (fd < 0) { perror("socket"); return 1; }
  int size = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  struct { struct nlmsghdr h; struct nfgenmsg g; } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.g.nfgen_family = AF_UNSPEC;
  if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    perror("sendto");
    return 1;
  }
  static char buf[256 * 1024];
  long n = 0;
  for (;;) {
    ssize_t len = recv(fd, buf, sizeof buf, 0);
    if (len < 0) { perror("recv"); return 1; }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) { printf("%ld\n", n); return 0; }
      if (h->nlmsg_type == NLMSG_ERROR) { fprintf(stderr, "netlink error\n"); return 1; }
      n++;
    }
  }
}
