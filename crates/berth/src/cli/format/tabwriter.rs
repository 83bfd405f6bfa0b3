//! Go's `text/tabwriter`, as the Docker CLI uses it for tables
//! (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`).
//!
//! Ported by hand: Docker's column layout depends on tabwriter's exact block semantics
//! (a column's width is decided per block of consecutive lines that have that column; a line
//! without tabs flushes everything before it; the last cell of a line is never padded; widths
//! count runes), which no Rust crate reproduces.

/// A cell: its text, its width in runes, and whether a `\t` (not a `\v`) ended it.
#[derive(Debug, Clone, Default)]
struct Cell {
    text: String,
    width: usize,
}

/// Collects text, aligns tab-separated cells into columns and returns the result.
#[derive(Debug)]
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    lines: Vec<Vec<Cell>>,
    cell: Cell,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// Go's `NewWriter(out, minwidth, tabwidth, padding, ' ', 0)`; `tabwidth` only matters for
    /// tab padding, which this writer (padchar `' '`) never uses.
    pub fn new(minwidth: usize, padding: usize) -> Self {
        Self {
            minwidth,
            padding,
            lines: vec![Vec::new()],
            cell: Cell::default(),
            widths: Vec::new(),
            out: String::new(),
        }
    }

    /// Docker's table writer.
    pub fn docker() -> Self {
        Self::new(10, 3)
    }

    pub fn write(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' | '\x0b' | '\n' | '\x0c' => {
                    let ncells = self.terminate_cell();
                    if ch == '\n' || ch == '\x0c' {
                        self.lines.push(Vec::new());
                        if ch == '\x0c' || ncells == 1 {
                            // A line with a single cell does not influence the layout of the
                            // following lines: everything so far can be written out.
                            self.flush_lines();
                        }
                    }
                }
                c => {
                    self.cell.text.push(c);
                    self.cell.width += 1;
                }
            }
        }
    }

    fn terminate_cell(&mut self) -> usize {
        let cell = std::mem::take(&mut self.cell);
        let line = self.lines.last_mut();
        match line {
            Some(l) => {
                l.push(cell);
                l.len()
            }
            None => {
                self.lines.push(vec![cell]);
                1
            }
        }
    }

    fn flush_lines(&mut self) {
        if !self.cell.text.is_empty() {
            self.terminate_cell();
        }
        let n = self.lines.len();
        self.format(0, n);
        self.lines = vec![Vec::new()];
        self.widths.clear();
    }

    /// Flushes and returns everything written.
    pub fn finish(mut self) -> String {
        self.flush_lines();
        self.out
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A cell exists in this column: print the lines before this block.
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(&c.text);
                if let Some(w) = self.widths.get(j) {
                    for _ in c.width..*w {
                        self.out.push(' ');
                    }
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

/// Aligns `text` with Docker's table settings.
#[cfg(test)]
pub fn align(text: &str) -> String {
    let mut w = TabWriter::docker();
    w.write(text);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn docker_ps_header() {
        assert_eq!(
            align("CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n"),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn docker_ps_rows_from_the_trace() {
        let text = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n\
                    eca29ddca97a\tbusybox\t\"httpd -f -p 8080\"\t55 seconds ago\tExited (137) Less than a second ago\t\tweb\n";
        assert_eq!(
            align(text),
            "CONTAINER ID   IMAGE     COMMAND              CREATED          STATUS                                PORTS     NAMES\n\
             eca29ddca97a   busybox   \"httpd -f -p 8080\"   55 seconds ago   Exited (137) Less than a second ago             web\n"
        );
    }

    #[test]
    fn trailing_empty_cell_keeps_padding() {
        // The history table: SIZE is tab-terminated, the empty COMMENT is the last cell.
        assert_eq!(
            align("SIZE\tCOMMENT\n0B\t\n"),
            "SIZE      COMMENT\n0B        \n"
        );
    }

    #[test]
    fn a_line_without_tabs_splits_blocks() {
        assert_eq!(
            align("a\tb\nlonger-line\nveryveryverylong\tc\n"),
            "a         b\nlonger-line\nveryveryverylong   c\n"
        );
    }

    #[test]
    fn widths_count_runes() {
        assert_eq!(align("ab…\tx\nabcd\ty\n"), "ab…       x\nabcd      y\n");
    }

    #[test]
    fn top_uses_minwidth_20() {
        let mut w = TabWriter::new(20, 3);
        w.write("UID\tPID\tCMD\nroot\t958\tsh\n");
        assert_eq!(
            w.finish(),
            "UID                 PID                 CMD\nroot                958                 sh\n"
        );
    }

    proptest! {
        #[test]
        fn columns_line_up(rows in prop::collection::vec(prop::collection::vec("[a-z ]{0,14}", 3), 1..8)) {
            let text: String = rows.iter().map(|r| r.join("\t") + "\n").collect();
            let out = align(&text);
            let lines: Vec<&str> = out.lines().collect();
            prop_assert_eq!(lines.len(), rows.len());
            // The second and third cells start at the same character offset on every line.
            let w0 = rows.iter().map(|r| r[0].chars().count() + 3).max().unwrap().max(10);
            let w1 = rows.iter().map(|r| r[1].chars().count() + 3).max().unwrap().max(10);
            for (line, row) in lines.iter().zip(&rows) {
                let chars: Vec<char> = line.chars().collect();
                let c1: String = chars[w0..w0 + row[1].chars().count()].iter().collect();
                prop_assert_eq!(&c1, &row[1]);
                let c2: String = chars[w0 + w1..].iter().collect();
                prop_assert_eq!(&c2, &row[2]);
            }
        }

        #[test]
        fn never_panics(s in "[a-z\t\n\x0b\x0c ]{0,60}") {
            let out = align(&s);
            // Text is preserved, only padding is added.
            let strip = |t: &str| t.chars().filter(|c| !matches!(c, ' ' | '\t' | '\x0b' | '\n' | '\x0c')).collect::<String>();
            prop_assert_eq!(strip(&out), strip(&s));
        }
    }
}
