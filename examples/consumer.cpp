// Minimal C++ consumer of libgen, built through pkg-config (tests/install/run.sh).
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include <gen/gen.h>

namespace {

// RAII owner of a context; errors become exceptions carrying libgen's message.
struct ContextDeleter {
    void operator()(gen_context *ctx) const { gen_context_destroy(ctx); }
};
using Context = std::unique_ptr<gen_context, ContextDeleter>;

void check(gen_status st)
{
    if (st != GEN_OK)
        throw std::runtime_error(std::string(gen_status_string(st)) + ": " +
                                 gen_last_error_message());
}

Context make_context(const char *devices)
{
    gen_context_options opts = GEN_CONTEXT_OPTIONS_INIT;
    check(gen_context_options_set(&opts, "generation_devices", devices));
    gen_context *raw = nullptr;
    check(gen_context_create(&raw, &opts));
    return Context(raw);
}

} // namespace

int main()
{
    try {
        Context ctx = make_context("cpu:0");
        std::printf("libgen %s (C++) on %s\n", gen_version_string(),
                    gen_context_get_options(ctx.get())->generation_devices);
        // A bad value must surface as an error, not a crash.
        try {
            make_context("gpu:7");
            return 1;
        } catch (const std::runtime_error &e) {
            std::printf("expected error: %s\n", e.what());
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
