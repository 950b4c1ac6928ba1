package l4

// addBackendSocket registers a connection's backend socket with the loop's
// poller. It goes through Server.backendPollFault first, a seam for tests:
// the failures it stands for (EPOLL_CTL_ADD with ENOSPC once the user's
// fs.epoll.max_user_watches is reached, or ENOMEM) cannot be provoked
// safely on a shared machine, the limit being one for every process of
// the user, and filling millions of watches being no test. The cost is
// one atomic load per backend connect, none per event or byte.
func (l *loop) addBackendSocket(fd int, data uint64) error {
	if f := l.srv.backendPollFault.Load(); f != nil {
		if err := (*f)(); err != nil {
			return err
		}
	}
	return l.poll.Add(fd, connEvents, data)
}
