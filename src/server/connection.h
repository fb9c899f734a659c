// Whether the client of a request being served is still connected, so that a request whose
// client went away can be cancelled even while nothing is written to it (a non-streaming reply,
// a stream waiting in the queue or in a long prefill).
//
// cpp-httplib 0.11 (Debian bookworm) gives handlers neither the socket nor a way to ask (later
// versions have Request::is_connection_closed), so the socket is found among the process's open
// sockets by the request's local and remote address and port. The connection's thread is inside
// the handler (or its content provider) while this is used, so the socket stays open and keeps
// its number meanwhile.
//
// Thread-safety: used by the thread serving the request only; it must not outlive the handler
// and the content provider of that request.
#pragma once

namespace httplib {
struct Request;
}

namespace bitnet::server {

class ClientConnection {
 public:
  explicit ClientConnection(const httplib::Request& req);  // finds the socket
  // True once the client has closed the connection or it failed: the next read would give
  // end-of-file or an error. Bytes of a pipelined next request count as connected. Never blocks;
  // false when the socket was not found.
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace bitnet::server
