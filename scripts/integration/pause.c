/*
 * The pod sandbox's process for scripts/integration/cri.sh: it holds the pod's namespaces,
 * reaps whatever is reparented to it (it is PID 1 of the sandbox), and exits 0 on TERM or
 * INT (a PID 1 has no default action for them). Built static by pause-image.sh.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) { (void)sig; stop = 1; }
static void on_child(int sig) { (void)sig; }

int main(void) {
    struct sigaction sa;
    sigset_t block, old;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
        return 1;
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL))
        return 1;
    /* Signals are taken only inside sigsuspend, so none is lost between the check and the wait. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!stop) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        sigsuspend(&old);
    }
    return 0;
}
