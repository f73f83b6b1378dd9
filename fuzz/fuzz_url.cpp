// make_url() on arbitrary text: a URL or an ArgumentError, never a crash; a parsed URL renders
// back to text that parses to the same URL.
#include <athanor/athanor.hpp>

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    athanor::URL url;
    try {
        url = athanor::make_url(text);
    } catch (const athanor::ArgumentError&) {
        return 0;
    }
    if (text.find('\0') != std::string::npos) std::abort();  // a NUL must never reach a file name
    athanor::URL again;
    try {
        again = athanor::make_url(url.render());
    } catch (const athanor::ArgumentError&) {
        return 0;  // render() is for display; not every URL text round-trips through it
    }
    if (again.database != url.database && url.query.empty()) std::abort();
    // A server URL keeps its parts through render(false) (the password is %-escaped, not lost).
    if (url.backend() == "postgresql") {
        athanor::URL full;
        try {
            full = athanor::make_url(url.render(false));
        } catch (const athanor::ArgumentError&) {
            std::abort();  // what make_url produced must parse again
        }
        if (full.username != url.username || full.password != url.password || full.host != url.host ||
            full.port != url.port || full.database != url.database || full.query != url.query)
            std::abort();
    }
    return 0;
}
