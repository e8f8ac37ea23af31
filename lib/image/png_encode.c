/* RGB8 -> PNG with libpng into memory, and atomic, collision-free files. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>

#include "core/alloc.h"
#include "core/crash_point.h"
#include "core/error.h"
#include "image/png.h"

typedef struct enc_ctx {
    uint8_t *buf;
    size_t len, cap;
    int oom;
    char msg[200];
} enc_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    enc_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void write_mem(png_structp png, png_bytep data, png_size_t n)
{
    enc_ctx *c = png_get_io_ptr(png);
    if (n > c->cap - c->len) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap - c->len < n)
            cap *= 2;
        uint8_t *b = gen__realloc(c->buf, cap);
        if (!b) {
            c->oom = 1;
            png_error(png, "out of memory");
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
}

static void flush_mem(png_structp png)
{
    (void)png;
}

typedef struct enc_job {
    const uint8_t *rgb;
    uint32_t width, height;
    size_t stride;
    const char *metadata_json;
} enc_job;

/* The libpng part; state that outlives a longjmp is in *c and *job. */
static gen_status encode(enc_ctx *c, const enc_job *job)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        return gen__error(GEN_ENOMEM, "png: out of memory for the encoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        gen__free(c->buf);
        c->buf = NULL;
        return gen__error(c->oom ? GEN_ENOMEM : GEN_EINTERNAL, "png: encoding failed: %s", c->msg);
    }
    png_set_write_fn(png, c, write_mem, flush_mem);
    png_set_IHDR(png, info, job->width, job->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (job->metadata_json) {
        png_text text;
        memset(&text, 0, sizeof text);
        text.compression = PNG_ITXT_COMPRESSION_NONE;
        text.key = (png_charp)GEN__PNG_META_KEY;
        text.text = (png_charp)job->metadata_json;
        text.itxt_length = strlen(job->metadata_json);
        text.lang = (png_charp)"";
        text.lang_key = (png_charp)"";
        png_set_text(png, info, &text, 1);
    }
    png_write_info(png, info);
    for (uint32_t y = 0; y < job->height; y++)
        png_write_row(png, (png_const_bytep)(job->rgb + (size_t)y * job->stride));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return GEN_OK;
}

gen_status gen__png_encode_memory(const uint8_t *rgb, uint32_t width, uint32_t height, size_t stride,
                                  const char *metadata_json, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!rgb || width == 0 || height == 0 || width > PNG_USER_WIDTH_MAX ||
        height > PNG_USER_HEIGHT_MAX || stride < (size_t)width * 3)
        return gen__error(GEN_EINVAL, "png: bad image (%ux%u, stride %zu)", width, height, stride);
    enc_ctx *c = gen__calloc(1, sizeof *c);
    if (!c)
        return gen__error(GEN_ENOMEM, "png: out of memory");
    enc_job job = { rgb, width, height, stride, metadata_json };
    gen_status st = encode(c, &job);
    if (st == GEN_OK) {
        *out = c->buf;
        *out_len = c->len;
    }
    gen__free(c);
    return st;
}

/* Folder part of path ("." when none) into buf. */
static void dir_of(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, size, ".");
    else if (slash == path)
        snprintf(buf, size, "/");
    else
        snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

static gen_status fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return gen__error(GEN_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* Some filesystems cannot fsync a directory; the data itself is synced. */
    if (rc != 0 && err != EINVAL && err != ENOTSUP)
        return gen__error(GEN_EIO, "%s: fsync failed: %s", dir, strerror(err));
    return GEN_OK;
}

static gen_status io_status(int err)
{
    return err == ENOSPC || err == EDQUOT ? GEN_ENOSPC : err == EACCES || err == EPERM ? GEN_EPERM
                                                                                      : GEN_EIO;
}

/* Write bytes to a new temporary file beside `path`; its name goes to tmp. */
static gen_status write_temp(const char *path, const uint8_t *data, size_t len, char *tmp,
                             size_t tmp_size)
{
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    /* The pid in the name lets gen__png_remove_stale_temps tell the leftovers
     * of a killed writer from files being written right now. */
    if ((size_t)snprintf(tmp, tmp_size, "%s/.libgen-%ld-XXXXXX.tmp", dir, (long)getpid()) >=
        tmp_size)
        return gen__error(GEN_EINVAL, "%s: path too long", path);
    int fd = mkostemps(tmp, 4, O_CLOEXEC);
    if (fd < 0)
        return gen__error(io_status(errno), "%s: cannot create a file: %s", dir, strerror(errno));
    /* In two halves so that the crash tests can die with half a file written. */
    size_t done = 0, half = len / 2;
    while (done < len) {
        ssize_t w = write(fd, data + done, (done < half ? half : len) - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return gen__error(io_status(err), "%s: write failed: %s", tmp, strerror(err));
        }
        done += (size_t)w;
        if (done == half)
            gen__crash_point("image.temp_half_written");
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(tmp);
        return gen__error(io_status(err), "%s: %s", tmp, strerror(err));
    }
    if (close(fd) != 0) {
        int err = errno;
        unlink(tmp);
        return gen__error(io_status(err), "%s: close failed: %s", tmp, strerror(err));
    }
    return GEN_OK;
}

/* Move tmp to path; without replace, atomically fail if path exists (EEXIST). */
static int move_into_place(const char *tmp, const char *path, bool replace)
{
    if (replace)
        return rename(tmp, path) == 0 ? 0 : errno;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return errno;
    /* Filesystems without RENAME_NOREPLACE: link() also refuses to overwrite. */
    if (link(tmp, path) != 0)
        return errno;
    unlink(tmp);
    return 0;
}

static gen_status write_bytes(const char *path, const uint8_t *data, size_t len, bool replace)
{
    char tmp[PATH_MAX + 32];
    gen_status st = write_temp(path, data, len, tmp, sizeof tmp);
    if (st != GEN_OK)
        return st;
    gen__crash_point("image.before_rename");
    int err = move_into_place(tmp, path, replace);
    if (err != 0) {
        unlink(tmp);
        if (err == EEXIST)
            return gen__error(GEN_EBUSY, "%s: already exists", path);
        return gen__error(io_status(err), "%s: cannot move into place: %s", path, strerror(err));
    }
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    st = fsync_dir(dir);
    gen__crash_point("image.after_rename");
    return st;
}

gen_status gen__png_write_file(const char *path, const uint8_t *rgb, uint32_t width, uint32_t height,
                               size_t stride, const char *metadata_json, bool replace)
{
    if (!path || !*path)
        return gen__error(GEN_EINVAL, "png: empty output path");
    uint8_t *png;
    size_t len;
    gen_status st = gen__png_encode_memory(rgb, width, height, stride, metadata_json, &png, &len);
    if (st != GEN_OK)
        return st;
    st = write_bytes(path, png, len, replace);
    gen__free(png);
    return st;
}

gen_status gen__png_write_unique(const char *dir, const char *stem, const uint8_t *rgb,
                                 uint32_t width, uint32_t height, size_t stride,
                                 const char *metadata_json, char *path_out, size_t path_out_size)
{
    if (path_out_size)
        path_out[0] = '\0';
    if (!dir || !stem || !*stem || strchr(stem, '/'))
        return gen__error(GEN_EINVAL, "png: bad file name stem \"%.64s\"", stem ? stem : "");
    uint8_t *png;
    size_t len;
    gen_status st = gen__png_encode_memory(rgb, width, height, stride, metadata_json, &png, &len);
    if (st != GEN_OK)
        return st;
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.png", dir, stem) >= sizeof path) {
        gen__free(png);
        return gen__error(GEN_EINVAL, "png: output path too long in %.200s", dir);
    }
    st = write_temp(path, png, len, tmp, sizeof tmp);
    gen__free(png);
    if (st != GEN_OK)
        return st;
    /* The first free name wins; a concurrent writer taking it moves us on. */
    int err = EEXIST;
    for (unsigned k = 0; k < 100000 && err == EEXIST; k++) {
        int n = k == 0 ? snprintf(path, sizeof path, "%s/%s.png", dir, stem)
                       : snprintf(path, sizeof path, "%s/%s-%u.png", dir, stem, k);
        if (n < 0 || (size_t)n >= sizeof path || (size_t)n >= path_out_size) {
            unlink(tmp);
            return gen__error(GEN_EINVAL, "png: output path too long in %.200s", dir);
        }
        err = move_into_place(tmp, path, false);
    }
    if (err != 0) {
        unlink(tmp);
        if (err == EEXIST)
            return gen__error(GEN_EBUSY, "png: no free name for %s in %s", stem, dir);
        return gen__error(io_status(err), "%s: cannot move into place: %s", path, strerror(err));
    }
    snprintf(path_out, path_out_size, "%s", path);
    return fsync_dir(dir);
}

unsigned gen__png_remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    unsigned removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = 0;
        char rest[64];
        if (sscanf(e->d_name, ".libgen-%ld-%63s", &pid, rest) != 2 || pid <= 0 ||
            strstr(e->d_name, ".tmp") == NULL)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue; /* its writer is alive */
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path &&
            unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
