//! Signal names and numbers, as `kill` accepts them (KILL, SIGKILL, 9).

const NAMES: [(&str, libc::c_int); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

/// Parse a signal: a name with or without SIG (any case), RTMIN+n, or a number.
pub fn parse(s: &str) -> Option<libc::c_int> {
    if let Ok(n) = s.parse::<libc::c_int>() {
        return (1..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(off) = name.strip_prefix("RTMIN+") {
        // Digits only: i32's parser also takes a sign ("RTMIN+-1" would be
        // a signal below SIGRTMIN), and a large offset must not overflow.
        if !off.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = libc::SIGRTMIN().checked_add(off.parse().ok()?)?;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    if name == "RTMIN" {
        return Some(libc::SIGRTMIN());
    }
    if name == "RTMAX" {
        return Some(libc::SIGRTMAX());
    }
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse("KILL"), Some(9));
        assert_eq!(parse("SIGKILL"), Some(9));
        assert_eq!(parse("sigterm"), Some(15));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("RTMIN+1"), Some(libc::SIGRTMIN() + 1));
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse("0"), None);
        assert_eq!(parse("99"), None);
    }

    #[test]
    fn rtmin_offsets_are_unsigned_and_do_not_overflow() {
        // Found by tests/props.rs: "RTMIN+-1" was SIGRTMIN-1, and an offset
        // near i32::MAX overflowed (a panic in debug builds).
        assert_eq!(parse("RTMIN+-1"), None);
        assert_eq!(parse("sigrtmin+-3"), None);
        assert_eq!(parse("RTMIN++1"), None);
        assert_eq!(parse("RTMIN+2147483647"), None);
        assert_eq!(parse("RTMIN+"), None);
        assert_eq!(parse("RTMIN+0"), Some(libc::SIGRTMIN()));
        let span = libc::SIGRTMAX() - libc::SIGRTMIN();
        assert_eq!(parse(&format!("RTMIN+{span}")), Some(libc::SIGRTMAX()));
        assert_eq!(parse(&format!("RTMIN+{}", span + 1)), None);
    }
}
