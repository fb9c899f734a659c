// A minimal HTTP client over libcurl for the Hub: one request per call, headers collected with
// lower-case names. Thread-safety: calls are independent (libcurl is initialised once).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace bitnet::hub {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // of the last response, names in lower case
  std::string body;                            // unless a sink received it
  std::string header(const std::string& lower_name) const;  // "" when absent
};

struct HttpRequest {
  std::string method = "GET";  // GET or HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  bool follow_redirects = false;     // all of them (the Authorization header is not sent to other hosts)
  // Receives the body of a 2xx response instead of HttpResponse::body; returning false aborts.
  std::function<bool(const char* data, size_t size)> sink;
};

// Transport failures (no connection, reset, stalled transfer) as opposed to HTTP statuses.
struct TransportError {
  std::string message;
  bool sink_failed = false;  // the sink returned false (it knows why)
};

// Performs the request. Returns false and fills `error` on a transport failure; HTTP error
// statuses are returned in the response.
bool http_perform(const HttpRequest& request, HttpResponse& response, TransportError& error);

// "scheme://host[:port]" of a URL.
std::string url_origin(const std::string& url);
// Percent-encoding as Python's urllib.parse.quote: unreserved characters and `safe` stay.
std::string url_quote(const std::string& text, const std::string& safe);

}  // namespace bitnet::hub
