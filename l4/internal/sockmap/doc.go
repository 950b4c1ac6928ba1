// Package sockmap drives the kernel's socket-to-socket relay: a BPF
// sockhash whose sk_skb stream verdict program redirects every byte a
// socket receives to the egress of its peer, so that no byte and no
// wake-up of the relaying process is needed to move it. Everything is
// done with raw bpf(2) calls through golang.org/x/sys/unix: two maps, a
// program of eleven hand-assembled instructions, no BPF library and no
// object file.
//
// It is the measured basis of a decision, not a feature: the daemon does
// not relay through it, and no configuration key turns it on. On the
// kernel measured (Linux 6.18) the kernel relay breaks guarantees that
// splicer's relay keeps, and it saves no CPU per request (see "No kernel
// fast path" in docs/architecture.md, figures in docs/benchmarks.md):
//
//   - The redirect queue is unbounded. Bytes the kernel takes from a
//     socket are no longer charged to it (nor to tcp_mem), so its receive
//     window stays open while the peer's send buffer is full: a client
//     that stops reading makes the kernel hold whatever the backend sends,
//     over a gigabyte in seconds, with socket buffers locked small.
//   - Taking a pair out of the map drops what its redirect queue holds,
//     and a FIN passed on when the sender's FIN arrives overtakes the
//     queue: the receiver sees a clean end after a truncated stream.
//     Both are avoidable with accounting from TCP_INFO (the tests show
//     how), the first is not.
//
// The tests of this package pin each of these facts down on the running
// kernel, so that a kernel that changes shows up as a failing test and
// the decision can be revisited.
//
// # Contract
//
// Open needs CAP_BPF and CAP_NET_ADMIN (or root); without them it fails
// with an error wrapping EPERM, and a program the kernel refuses yields a
// *LoadError carrying the verifier's log. Add takes two connected TCP
// sockets: from its return the kernel relays between them, bytes already
// queued included, and the caller must neither read nor write them. The
// caller keeps the fds and may still poll them (a FIN raises EPOLLRDHUP,
// a reset EPOLLERR as usual), read TCP_INFO and SIOCOUTQ, shut them down
// and close them; closing a socket takes it out of the maps (a reset one
// stays in until then). Remove takes a pair out, dropping what the kernel
// still holds for it.
package sockmap
