//! [`Printer`]: the instrumentation behind `--print-before`, `--print-after` and
//! `--print-changed`, writing text IR under MLIR-style banners.

use super::PassSelection;
use std::io::{ErrorKind, Write};
use tessera_ir::Graph;
use tessera_passes::manager::{
    banner_after, banner_before, HookError, Instrumentation, PassRecord,
};

/// Prints the IR before and/or after the selected passes to a writer.
///
/// With `only_changed`, the IR after a pass is printed only when the pass changed the graph
/// (`--print-changed`; alone it means "after every pass that changed something"). A closed
/// pipe (`| head`) silently ends printing instead of failing the pipeline.
pub struct Printer<W: Write> {
    out: W,
    before: PassSelection,
    after: PassSelection,
    only_changed: bool,
    closed: bool,
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`. `after` defaults to every pass when `only_changed` is
    /// set and `after` selects none.
    pub fn new(out: W, before: PassSelection, after: PassSelection, only_changed: bool) -> Self {
        let after = if only_changed && !after.is_some() {
            PassSelection::All
        } else {
            after
        };
        Printer {
            out,
            before,
            after,
            only_changed,
            closed: false,
        }
    }

    /// True when the printer prints anything at all.
    pub fn is_active(&self) -> bool {
        self.before.is_some() || self.after.is_some()
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        match self.out.flush() {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e),
            _ => Ok(self.out),
        }
    }

    fn dump(&mut self, banner: &str, graph: &Graph) -> Result<(), HookError> {
        if self.closed {
            return Ok(());
        }
        let text = tessera_ir::text::print(graph);
        let written =
            writeln!(self.out, "{banner}").and_then(|()| self.out.write_all(text.as_bytes()));
        match written {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(format!("printing IR: {e}").into()),
            Ok(()) => Ok(()),
        }
    }
}

impl<W: Write> Instrumentation for Printer<W> {
    fn before_pass(&mut self, _index: usize, name: &str, graph: &Graph) -> Result<(), HookError> {
        if self.before.contains(name) {
            self.dump(&banner_before(name), graph)?;
        }
        Ok(())
    }

    fn after_pass(&mut self, record: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        if self.after.contains(&record.name) && (record.changed || !self.only_changed) {
            self.dump(&banner_after(record), graph)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tessera_ir::{DType, TensorType};

    fn graph() -> Graph {
        let mut g = Graph::new("p");
        let x = g.input("x", TensorType::scalar(DType::F32)).unwrap();
        g.set_output("y", x).unwrap();
        g
    }

    fn record(name: &str, changed: bool) -> PassRecord {
        PassRecord {
            index: 1,
            name: name.into(),
            seconds: 0.0,
            verify_seconds: 0.0,
            nodes_before: 1,
            nodes_after: 1,
            added: 0,
            removed: 0,
            changed,
            counters: Default::default(),
        }
    }

    fn run(before: PassSelection, after: PassSelection, only_changed: bool) -> String {
        let mut p = Printer::new(Vec::new(), before, after, only_changed);
        let g = graph();
        for (name, changed) in [("a", true), ("b", false)] {
            p.before_pass(1, name, &g).unwrap();
            p.after_pass(&record(name, changed), &g).unwrap();
        }
        String::from_utf8(p.finish().unwrap()).unwrap()
    }

    fn banners(s: &str) -> Vec<&str> {
        s.lines().filter(|l| l.starts_with("// -----//")).collect()
    }

    #[test]
    fn selections_and_changed_only() {
        let only_b = PassSelection::Names(BTreeSet::from(["b".to_string()]));
        let all = run(PassSelection::None, PassSelection::All, false);
        assert_eq!(
            banners(&all),
            [
                "// -----// IR Dump After a (0.00 ms, changed) //----- //",
                "// -----// IR Dump After b (0.00 ms, unchanged) //----- //"
            ]
        );
        assert!(all.contains("graph @p(%x: f32[]) {\n  return %y: %x\n}\n"));
        let changed = run(PassSelection::None, PassSelection::None, true);
        assert_eq!(banners(&changed).len(), 1);
        assert!(banners(&changed)[0].contains("After a"));
        assert!(run(PassSelection::None, only_b.clone(), true).is_empty());
        let before = run(only_b, PassSelection::None, false);
        assert_eq!(banners(&before), ["// -----// IR Dump Before b //----- //"]);
        assert!(
            !Printer::new(Vec::new(), PassSelection::None, PassSelection::None, false).is_active()
        );
    }

    /// A writer whose reader went away.
    struct ClosedPipe;
    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_pipe_ends_printing_quietly() {
        let mut p = Printer::new(ClosedPipe, PassSelection::All, PassSelection::All, false);
        p.before_pass(1, "a", &graph()).unwrap();
        p.after_pass(&record("a", true), &graph()).unwrap();
        assert!(p.finish().is_ok());
    }
}
