/*
 * The embedded Redis. It runs with appendonly yes and appendfsync always, so a write that
 * Redis has acknowledged is on disk before fristadd acknowledges it to the client, and it
 * listens on a unix socket only (port 0), readable by this user alone.
 *
 * Its log is ours: redis-server writes to a pipe, and each of its lines is logged by fristadd
 * at the matching level, without Redis's own timestamp, so that it reaches the journal (or
 * wherever fristadd logs) with a priority, and no file grows unrotated in the data directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "daemon.h"
#include "log.h"
#include "spawn.h"

#define RESTART_MIN_MS 200
#define RESTART_MAX_MS 5000
#define STOP_GRACE_MS  10000
#define LOG_LINE_MAX   900 /* a longer line from redis-server is cut */

enum spawn_state {
    SPAWN_IDLE,     /* no child: not started yet, or stopped */
    SPAWN_RUNNING,  /* the child runs */
    SPAWN_WAITING,  /* the child died; a restart is scheduled */
    SPAWN_STOPPING, /* we asked it to stop */
};

struct spawn {
    struct daemon *d;
    enum spawn_state state;
    pid_t pid;
    int lock_fd;
    unsigned backoff_ms;
    struct event *restart_timer;
    char dir[CONFIG_PATH_MAX];
    int log_fd;               /* read end of the child's stdout and stderr; -1 when none */
    struct event *log_ev;     /* readable log_fd */
    struct evbuffer *log_buf; /* a line not complete yet */
};

/*
 * Redis logs its start and stop banners as warnings so that they show at every log level;
 * here they are what they are, notices.
 */
static const char *const redis_banners[] = {
    "oO0OoO0OoO0Oo Redis is starting",
    "Redis version=",
    "Configuration loaded",
    "Server initialized",
    "User requested shutdown",
    "Redis is now ready to exit",
};

/*
 * One line of redis-server's log, "PID:ROLE DD Mon YYYY HH:MM:SS.mmm LEVEL message", logged
 * at the level its LEVEL character names (# warning, * notice, - verbose, . debug), as info
 * for its notices; its signal handler's lines are notices. Anything else (a crash report, say)
 * is logged as it is, as a warning.
 */
static void log_redis_line(const char *line)
{
    char role[16];
    int day, year, n = 0;
    char mon[4], clock[16], level = 0;
    if (sscanf(line, "%*d:%15s %d %3s %d %15s %c %n", role, &day, mon, &year, clock, &level, &n) ==
            6 &&
        n > 0 && strchr(".-*#", level)) {
        enum log_level l = level == '#'   ? LOG_LVL_WARNING
                           : level == '*' ? LOG_LVL_INFO
                                          : LOG_LVL_DEBUG;
        for (size_t i = 0; l == LOG_LVL_WARNING && i < sizeof redis_banners / sizeof *redis_banners;
             i++) {
            if (strncmp(line + n, redis_banners[i], strlen(redis_banners[i])) == 0)
                l = LOG_LVL_NOTICE;
        }
        if (log_enabled(l))
            log_write(l, "redis-server: %s", line + n);
    } else if (sscanf(line, "%*d:signal-handler (%*d) %n", &n) == 0 && n > 0) {
        log_notice("redis-server: %s", line + n); /* "Received SIGTERM scheduling shutdown" */
    } else if (line[0]) {
        log_warning("redis-server: %s", line);
    }
}

/* Logs every complete line in the buffer; at_eof, the rest too. */
static void log_redis_lines(struct spawn *sp, bool at_eof)
{
    char *line;
    size_t len;
    while ((line = evbuffer_readln(sp->log_buf, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        if (len > LOG_LINE_MAX)
            line[LOG_LINE_MAX] = '\0';
        log_redis_line(line);
        free(line);
    }
    size_t rest = evbuffer_get_length(sp->log_buf);
    if (rest > LOG_LINE_MAX || (at_eof && rest > 0)) {
        char buf[LOG_LINE_MAX + 1];
        size_t n = evbuffer_remove(sp->log_buf, buf, LOG_LINE_MAX);
        buf[n] = '\0';
        log_redis_line(buf);
        evbuffer_drain(sp->log_buf, evbuffer_get_length(sp->log_buf));
    }
}

static void log_pipe_close(struct spawn *sp)
{
    if (sp->log_ev) {
        event_free(sp->log_ev);
        sp->log_ev = NULL;
    }
    if (sp->log_fd >= 0) {
        close(sp->log_fd);
        sp->log_fd = -1;
    }
}

/* Reads what the child has written; at its end (every writer gone) logs the rest and closes. */
static void log_pipe_read(struct spawn *sp)
{
    for (;;) {
        int n = evbuffer_read(sp->log_buf, sp->log_fd, 4096);
        if (n > 0) {
            log_redis_lines(sp, false);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        log_redis_lines(sp, true);
        log_pipe_close(sp);
        return;
    }
}

static void on_log(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_pipe_read(arg);
}

/*
 * Everything below dir private to this user: directories 0700, files 0600 (symbolic links
 * are left alone, never followed). `depth` bounds the walk: Redis keeps one level of
 * subdirectories (appendonlydir).
 */
static int make_private(const char *dir, unsigned depth, char *err, size_t errlen)
{
    DIR *dh = opendir(dir);
    if (!dh) {
        snprintf(err, errlen, "%s: cannot read the data directory: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(dh)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[CONFIG_PATH_MAX + 256];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode) || S_ISSOCK(st.st_mode))
            continue;
        mode_t want = S_ISDIR(st.st_mode) ? 0700 : 0600;
        if ((st.st_mode & 07777) != want && (st.st_mode & 077) && chmod(path, want) != 0) {
            snprintf(err, errlen, "%s: is readable by others and cannot be made private: %s", path,
                     strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode) && depth > 0) {
            rc = make_private(path, depth - 1, err, errlen);
        }
    }
    closedir(dh);
    return rc;
}

/*
 * The data directory holds every reference the append-only file has not forgotten yet: it is
 * made 0700 even when it existed before with a wider mode, and so is everything in it, and
 * the spawned Redis creates its files under umask 077.
 */
static int mkdir_private(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create the data directory: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: the data directory is not a directory", dir);
        return -1;
    }
    if ((st.st_mode & 077) && chmod(dir, 0700) != 0) {
        snprintf(err, errlen,
                 "%s: the data directory is readable by others and cannot be made "
                 "private: %s",
                 dir, strerror(errno));
        return -1;
    }
    return make_private(dir, 2, err, errlen);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct spawn *sp = arg;
    char err[256];
    if (sp->state != SPAWN_WAITING)
        return;
    if (spawn_start(sp, err, sizeof err) < 0) {
        log_error("redis-server: %s", err);
        sp->state = SPAWN_WAITING;
        struct timeval tv = {RESTART_MAX_MS / 1000, 0};
        evtimer_add(sp->restart_timer, &tv);
    }
}

struct spawn *spawn_new(struct daemon *d, char *err, size_t errlen)
{
    struct spawn *sp = calloc(1, sizeof *sp);
    char lock[CONFIG_PATH_MAX + 16];
    if (!sp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sp->d = d;
    sp->lock_fd = -1;
    sp->log_fd = -1;
    sp->backoff_ms = RESTART_MIN_MS;
    snprintf(sp->dir, sizeof sp->dir, "%s", d->cfg->data_dir);
    if (mkdir_private(sp->dir, err, errlen) < 0)
        goto fail;
    snprintf(lock, sizeof lock, "%s/fristadd.lock", sp->dir);
    sp->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lock_fd < 0) {
        snprintf(err, errlen, "%s: %s", lock, strerror(errno));
        goto fail;
    }
    if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "%s: another fristadd is using this data directory", sp->dir);
        goto fail;
    }
    sp->restart_timer = evtimer_new(d->base, on_restart, sp);
    sp->log_buf = evbuffer_new();
    if (!sp->restart_timer || !sp->log_buf) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return sp;
fail:
    spawn_free(sp);
    return NULL;
}

int spawn_start(struct spawn *sp, char *err, size_t errlen)
{
    char sock[CONFIG_PATH_MAX + 16];
    int out[2];
    snprintf(sock, sizeof sock, "%s/redis.sock", sp->dir);
    const char *argv[] = {
        sp->d->cfg->redis_server,
        "--port",
        "0",
        "--unixsocket",
        sock,
        "--unixsocketperm",
        "700",
        "--dir",
        sp->dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        "",
        "--protected-mode",
        "yes",
        NULL,
    };
    /* What a child that died left in its pipe has been read; its pipe makes way. */
    if (sp->log_fd >= 0) {
        log_pipe_read(sp);
        log_pipe_close(sp);
    }
    if (pipe(out) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    /* Neither end leaks into another program; dup2 in the child clears the flag on 1 and 2. */
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fcntl(out[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        /* Child: Redis must not outlive us, and must not hold our descriptors. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        umask(077); /* its append-only file, snapshots and log: for this user alone */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(out[1], STDERR_FILENO);
        closefrom(STDERR_FILENO + 1);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        fprintf(stderr, "fristadd: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    sp->log_fd = out[0];
    evutil_make_socket_nonblocking(sp->log_fd);
    sp->log_ev = event_new(sp->d->base, sp->log_fd, EV_READ | EV_PERSIST, on_log, sp);
    if (!sp->log_ev || event_add(sp->log_ev, NULL) != 0)
        log_warning("redis-server: its log cannot be read; it is lost");
    sp->pid = pid;
    sp->state = SPAWN_RUNNING;
    log_notice("redis-server started (pid %d, data in %s)", (int)pid, sp->dir);
    return 0;
}

int spawn_reaped(struct spawn *sp, pid_t pid, int status)
{
    if (!sp || pid != sp->pid)
        return 0;
    sp->pid = 0;
    if (sp->state == SPAWN_STOPPING) {
        sp->state = SPAWN_IDLE;
        return 1;
    }
    if (WIFEXITED(status))
        log_error("redis-server exited with status %d; its last lines are logged above",
                  WEXITSTATUS(status));
    else
        log_error("redis-server died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    sp->state = SPAWN_WAITING;
    struct timeval tv = {sp->backoff_ms / 1000, (sp->backoff_ms % 1000) * 1000};
    evtimer_add(sp->restart_timer, &tv);
    sp->backoff_ms = sp->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : sp->backoff_ms * 2;
    return 1;
}

void spawn_stop(struct spawn *sp)
{
    if (!sp)
        return;
    evtimer_del(sp->restart_timer);
    if (sp->state != SPAWN_RUNNING || sp->pid <= 0) {
        sp->state = SPAWN_IDLE;
        return;
    }
    sp->state = SPAWN_STOPPING;
    kill(sp->pid, SIGTERM);
    struct timespec step = {0, 20 * 1000 * 1000};
    for (int waited = 0; waited < STOP_GRACE_MS; waited += 20) {
        int status;
        pid_t r = waitpid(sp->pid, &status, WNOHANG);
        if (r == sp->pid || (r < 0 && errno == ECHILD)) {
            if (sp->log_fd >= 0)
                log_pipe_read(sp);
            log_notice("redis-server stopped");
            sp->pid = 0;
            sp->state = SPAWN_IDLE;
            return;
        }
        nanosleep(&step, NULL);
    }
    log_error("redis-server did not stop in time; killing it");
    kill(sp->pid, SIGKILL);
    waitpid(sp->pid, NULL, 0);
    sp->pid = 0;
    sp->state = SPAWN_IDLE;
}

void spawn_free(struct spawn *sp)
{
    if (!sp)
        return;
    if (sp->restart_timer)
        event_free(sp->restart_timer);
    log_pipe_close(sp);
    if (sp->log_buf)
        evbuffer_free(sp->log_buf);
    if (sp->lock_fd >= 0)
        close(sp->lock_fd);
    free(sp);
}
