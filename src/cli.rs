//! A small, table-driven command-line parser for runc-style CLIs.
//!
//! What it accepts: global flags anywhere (before or after the command),
//! `--flag value`, `--flag=value`, `-f value`, `-fvalue`, clustered short
//! booleans (`-df`), `--` to end the flags, optional positionals
//! (`[SIGNAL]`), and a trailing list taken verbatim once the positionals
//! are filled (exec's command, ps's options). `--help` text is generated
//! from the same tables. Values are strings; [`Parsed::num`] converts.
//!
//! hull used clap before: it was a fifth of the instructions of a
//! `hull run` parent and several hundred KB of the binary; see bench/.

use std::str::FromStr;

/// One flag: a boolean when `value` is empty, else it takes a value.
#[derive(Debug)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub aliases: &'static [&'static str],
    /// The value's name in help ("DIR", "N"); empty for a boolean.
    pub value: &'static str,
    pub help: &'static str,
    pub hidden: bool,
}

/// A boolean flag.
pub const fn switch(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        aliases: &[],
        value: "",
        help,
        hidden: false,
    }
}

/// A flag taking a value.
pub const fn opt(
    long: &'static str,
    short: Option<char>,
    value: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        aliases: &[],
        value,
        help,
        hidden: false,
    }
}

impl Flag {
    pub const fn alias(mut self, aliases: &'static [&'static str]) -> Flag {
        self.aliases = aliases;
        self
    }

    pub const fn hide(mut self) -> Flag {
        self.hidden = true;
        self
    }

    fn takes_value(&self) -> bool {
        !self.value.is_empty()
    }

    fn is_long(&self, name: &str) -> bool {
        self.long == name || self.aliases.contains(&name)
    }
}

/// A subcommand.
#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub about: &'static str,
    /// Positionals in order; `[NAME]` is optional (only at the end).
    pub args: &'static [&'static str],
    /// A trailing list, taken verbatim once `args` are filled.
    pub trailing: Option<&'static str>,
    pub flags: &'static [Flag],
}

/// The whole command line's grammar.
#[derive(Debug)]
pub struct App {
    pub name: &'static str,
    pub about: &'static str,
    pub globals: &'static [Flag],
    pub cmds: &'static [Cmd],
}

/// What was given: flags by their long name, in order.
#[derive(Debug, Default)]
pub struct Parsed {
    pub cmd: Option<&'static Cmd>,
    set: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
    pub trailing: Vec<String>,
}

/// The result of parsing: a command line, or a request for help text.
#[derive(Debug)]
pub enum Outcome {
    Run(Parsed),
    Help(String),
}

impl Parsed {
    /// Whether a flag was given.
    pub fn has(&self, long: &str) -> bool {
        self.set.iter().any(|(l, _)| *l == long)
    }

    /// A flag's value (the last one given).
    pub fn value(&self, long: &str) -> Option<&str> {
        self.set
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of a repeatable flag, in order.
    pub fn values(&self, long: &str) -> Vec<String> {
        self.set
            .iter()
            .filter(|(l, _)| *l == long)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// A flag's value as a number.
    pub fn num<T: FromStr>(&self, long: &str) -> Result<Option<T>, String> {
        self.value(long).map(|v| number(long, v)).transpose()
    }

    /// Every value of a repeatable numeric flag.
    pub fn nums<T: FromStr>(&self, long: &str) -> Result<Vec<T>, String> {
        self.values(long).iter().map(|v| number(long, v)).collect()
    }

    /// The positional at `i` (a required one is always there).
    pub fn arg(&self, i: usize) -> String {
        self.args.get(i).cloned().unwrap_or_default()
    }
}

fn number<T: FromStr>(long: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("--{long}: invalid value {v:?} (a number is expected)"))
}

fn find_long<'f>(flags: &[&'f [Flag]], name: &str) -> Option<&'f Flag> {
    flags
        .iter()
        .flat_map(|f| f.iter())
        .find(|f| f.is_long(name))
}

fn find_short<'f>(flags: &[&'f [Flag]], c: char) -> Option<&'f Flag> {
    flags
        .iter()
        .flat_map(|f| f.iter())
        .find(|f| f.short == Some(c))
}

/// Whether `arg` names a flag known in `flags` (for commands with a
/// trailing list: anything else starts the list).
fn is_known_flag(flags: &[&[Flag]], arg: &str) -> bool {
    if let Some(long) = arg.strip_prefix("--") {
        let name = long.split_once('=').map_or(long, |(n, _)| n);
        return find_long(flags, name).is_some() || name == "help";
    }
    match arg.strip_prefix('-').and_then(|s| s.chars().next()) {
        Some(c) => find_short(flags, c).is_some() || c == 'h',
        None => false,
    }
}

/// Parse `argv` (without the program name).
pub fn parse(app: &'static App, argv: impl IntoIterator<Item = String>) -> Result<Outcome, String> {
    let mut out = Parsed::default();
    let mut it = argv.into_iter();
    let mut only_args = false;
    while let Some(a) = it.next() {
        let flags: Vec<&[Flag]> = match out.cmd {
            Some(c) => vec![c.flags, app.globals],
            None => vec![app.globals],
        };
        if !only_args && a == "--" {
            only_args = true;
            continue;
        }
        let positional = only_args || a == "-" || !a.starts_with('-');
        if let Some(cmd) = out.cmd {
            let full = out.args.len() >= cmd.args.len();
            if cmd.trailing.is_some() && full && (positional || !is_known_flag(&flags, &a)) {
                out.trailing.push(a);
                out.trailing.extend(it.by_ref());
                break;
            }
        }
        if positional {
            match out.cmd {
                None if a == "help" => {
                    return Ok(Outcome::Help(match it.next() {
                        Some(c) => cmd_help(app, find_cmd(app, &c)?),
                        None => app_help(app),
                    }))
                }
                None => out.cmd = Some(find_cmd(app, &a)?),
                Some(cmd) if out.args.len() < cmd.args.len() => out.args.push(a),
                Some(cmd) => return Err(format!("{}: unexpected argument {a:?}", cmd.name)),
            }
            continue;
        }
        if a == "-h" || a == "--help" {
            return Ok(Outcome::Help(match out.cmd {
                Some(c) => cmd_help(app, c),
                None => app_help(app),
            }));
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let f = find_long(&flags, name).ok_or_else(|| unknown(app, out.cmd, &a))?;
            let v = if f.takes_value() {
                match inline {
                    Some(v) => Some(v),
                    None => Some(it.next().ok_or_else(|| needs_value(f))?),
                }
            } else if inline.is_some() {
                return Err(format!("--{}: takes no value", f.long));
            } else {
                None
            };
            out.set.push((f.long, v));
            continue;
        }
        // Short flags: -b VALUE, -bVALUE, -df.
        for (i, c) in a[1..].char_indices() {
            let f = find_short(&flags, c).ok_or_else(|| unknown(app, out.cmd, &format!("-{c}")))?;
            if f.takes_value() {
                let rest = &a[1 + i + c.len_utf8()..];
                let v = if rest.is_empty() {
                    it.next().ok_or_else(|| needs_value(f))?
                } else {
                    rest.to_string()
                };
                out.set.push((f.long, Some(v)));
                break;
            }
            out.set.push((f.long, None));
        }
    }
    if let Some(cmd) = out.cmd {
        let required = cmd.args.iter().filter(|a| !a.starts_with('[')).count();
        if out.args.len() < required {
            return Err(format!(
                "{}: missing {} (usage: {})",
                cmd.name,
                cmd.args[out.args.len()],
                usage(app, cmd)
            ));
        }
    }
    Ok(Outcome::Run(out))
}

fn find_cmd(app: &'static App, name: &str) -> Result<&'static Cmd, String> {
    app.cmds
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
        .ok_or_else(|| format!("unknown command {name:?} (try `{} --help`)", app.name))
}

fn unknown(app: &App, cmd: Option<&Cmd>, flag: &str) -> String {
    match cmd {
        Some(c) => format!(
            "{}: unknown flag {flag} (try `{} {} --help`)",
            c.name, app.name, c.name
        ),
        None => format!("unknown flag {flag} (try `{} --help`)", app.name),
    }
}

fn needs_value(f: &Flag) -> String {
    format!("--{} needs a value ({})", f.long, f.value)
}

fn usage(app: &App, cmd: &Cmd) -> String {
    let mut s = format!("{} {}", app.name, cmd.name);
    if !cmd.flags.is_empty() {
        s.push_str(" [flags]");
    }
    for a in cmd.args {
        s.push(' ');
        s.push_str(a);
    }
    if let Some(t) = cmd.trailing {
        s.push_str(&format!(" [{t}...]"));
    }
    s
}

fn flag_lines(out: &mut String, flags: &[Flag]) {
    let heads: Vec<(String, &Flag)> = flags
        .iter()
        .filter(|f| !f.hidden)
        .map(|f| {
            let mut h = match f.short {
                Some(c) => format!("-{c}, --{}", f.long),
                None => format!("    --{}", f.long),
            };
            for a in f.aliases {
                h.push_str(&format!(", --{a}"));
            }
            if f.takes_value() {
                h.push(' ');
                h.push_str(f.value);
            }
            (h, f)
        })
        .collect();
    let w = heads.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    for (h, f) in heads {
        out.push_str(&format!("  {h:<w$}  {}\n", f.help));
    }
}

/// `hull --help`.
pub fn app_help(app: &App) -> String {
    let mut s = format!(
        "{}\n\nUsage: {} [global flags] <command> [flags] [args]\n\nCommands:\n",
        app.about, app.name
    );
    let w = app.cmds.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in app.cmds {
        s.push_str(&format!("  {:<w$}  {}\n", c.name, c.about));
    }
    s.push_str("\nGlobal flags:\n");
    flag_lines(&mut s, app.globals);
    s.push_str(&format!(
        "\n`{} help <command>` or `{} <command> --help` describes a command.\n",
        app.name, app.name
    ));
    s
}

/// `hull <command> --help`.
pub fn cmd_help(app: &App, cmd: &Cmd) -> String {
    let mut s = format!("{}\n\nUsage: {}\n", cmd.about, usage(app, cmd));
    if !cmd.aliases.is_empty() {
        s.push_str(&format!("Aliases: {}\n", cmd.aliases.join(", ")));
    }
    if !cmd.flags.is_empty() {
        s.push_str("\nFlags:\n");
        flag_lines(&mut s, cmd.flags);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    static GLOBALS: [Flag; 2] = [
        opt("root", None, "DIR", "state root"),
        switch("debug", None, "debug"),
    ];
    static RUN: [Flag; 4] = [
        opt("bundle", Some('b'), "DIR", "bundle"),
        switch("detach", Some('d'), "detach"),
        switch("keep", None, "keep"),
        opt("cpu-share", None, "N", "shares").alias(&["cpu-shares"]),
    ];
    static PS: [Flag; 1] = [opt("format", Some('f'), "FMT", "format")];
    static CMDS: [Cmd; 4] = [
        Cmd {
            name: "run",
            aliases: &[],
            about: "run it",
            args: &["ID"],
            trailing: None,
            flags: &RUN,
        },
        Cmd {
            name: "exec",
            aliases: &[],
            about: "exec",
            args: &["ID"],
            trailing: Some("COMMAND"),
            flags: &RUN,
        },
        Cmd {
            name: "kill",
            aliases: &[],
            about: "kill",
            args: &["ID", "[SIGNAL]"],
            trailing: None,
            flags: &[],
        },
        Cmd {
            name: "ps",
            aliases: &["p"],
            about: "ps",
            args: &["ID"],
            trailing: Some("PS_ARGS"),
            flags: &PS,
        },
    ];
    static APP: App = App {
        name: "t",
        about: "test app",
        globals: &GLOBALS,
        cmds: &CMDS,
    };

    fn p(args: &[&str]) -> Result<Parsed, String> {
        match parse(&APP, args.iter().map(|s| s.to_string()))? {
            Outcome::Run(p) => Ok(p),
            Outcome::Help(h) => Err(format!("help: {h}")),
        }
    }

    #[test]
    fn flags_in_every_form_and_globals_anywhere() {
        let r = p(&["--root", "/r", "run", "-b", "/b", "x", "--debug", "-d"]).unwrap();
        assert_eq!(r.cmd.unwrap().name, "run");
        assert_eq!(r.value("root"), Some("/r"));
        assert_eq!(r.value("bundle"), Some("/b"));
        assert!(r.has("debug") && r.has("detach") && !r.has("keep"));
        assert_eq!(r.args, ["x"]);
        let r = p(&["run", "--bundle=/c", "-b/d", "--root=/s", "y"]).unwrap();
        assert_eq!(r.value("bundle"), Some("/d"));
        assert_eq!(r.values("bundle"), ["/c", "/d"]);
        assert_eq!(r.value("root"), Some("/s"));
        let r = p(&["run", "--cpu-shares", "-5", "z"]).unwrap();
        assert_eq!(r.num::<i64>("cpu-share").unwrap(), Some(-5));
        assert!(p(&["run", "--cpu-share", "x", "z"])
            .unwrap()
            .num::<i64>("cpu-share")
            .unwrap_err()
            .contains("--cpu-share"));
    }

    #[test]
    fn clustered_short_booleans() {
        let r = p(&["run", "-db", "/b", "x"]).unwrap();
        assert!(r.has("detach"));
        assert_eq!(r.value("bundle"), Some("/b"));
    }

    #[test]
    fn trailing_lists_are_verbatim() {
        let r = p(&["exec", "-d", "c1", "sh", "-c", "echo -d --keep"]).unwrap();
        assert!(r.has("detach"));
        assert_eq!(r.args, ["c1"]);
        assert_eq!(r.trailing, ["sh", "-c", "echo -d --keep"]);
        let r = p(&["ps", "c1", "-o", "pid,comm"]).unwrap();
        assert_eq!(r.trailing, ["-o", "pid,comm"]);
        let r = p(&["ps", "c1", "--", "-ef"]).unwrap();
        assert_eq!(r.trailing, ["-ef"]);
        let r = p(&["ps", "-f", "json", "c1"]).unwrap();
        assert_eq!(r.value("format"), Some("json"));
        assert!(r.trailing.is_empty());
        assert_eq!(p(&["p", "c1"]).unwrap().cmd.unwrap().name, "ps");
    }

    #[test]
    fn optional_positionals_and_errors() {
        assert_eq!(p(&["kill", "c"]).unwrap().args, ["c"]);
        assert_eq!(p(&["kill", "c", "KILL"]).unwrap().args, ["c", "KILL"]);
        let e = p(&["kill"]).unwrap_err();
        assert!(e.contains("missing ID"), "{e}");
        let e = p(&["kill", "a", "b", "c"]).unwrap_err();
        assert!(e.contains("unexpected argument \"c\""), "{e}");
        let e = p(&["run", "--nope", "x"]).unwrap_err();
        assert!(e.contains("unknown flag --nope"), "{e}");
        let e = p(&["frob"]).unwrap_err();
        assert!(e.contains("unknown command \"frob\""), "{e}");
        let e = p(&["run", "x", "-b"]).unwrap_err();
        assert!(e.contains("--bundle needs a value"), "{e}");
        let e = p(&["run", "--keep=1", "x"]).unwrap_err();
        assert!(e.contains("takes no value"), "{e}");
    }

    #[test]
    fn help_is_generated_from_the_tables() {
        let h = match parse(&APP, ["--help".to_string()]).unwrap() {
            Outcome::Help(h) => h,
            Outcome::Run(_) => panic!("no help"),
        };
        assert!(h.contains("run") && h.contains("--root DIR"), "{h}");
        let h = match parse(&APP, ["run".to_string(), "-h".to_string()]).unwrap() {
            Outcome::Help(h) => h,
            Outcome::Run(_) => panic!("no help"),
        };
        assert!(h.contains("Usage: t run [flags] ID"), "{h}");
        assert!(h.contains("-b, --bundle DIR"), "{h}");
        assert!(h.contains("--cpu-share, --cpu-shares N"), "{h}");
        let h = match parse(&APP, ["help".to_string(), "ps".to_string()]).unwrap() {
            Outcome::Help(h) => h,
            Outcome::Run(_) => panic!("no help"),
        };
        assert!(
            h.contains("[PS_ARGS...]") && h.contains("Aliases: p"),
            "{h}"
        );
    }
}
