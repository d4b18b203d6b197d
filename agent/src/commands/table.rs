//! The plain tables the commands print (`ward top`, `ward policy services`): a header
//! row, no borders, columns two spaces apart, the chosen columns right-aligned.
use comfy_table::{presets::NOTHING, CellAlignment, Table};

/// A table with these column titles; the columns in `right` are right-aligned.
pub(crate) fn plain(header: &[&str], right: &[usize]) -> Table {
    let mut table = Table::new();
    table.load_style(NOTHING).set_header(header.to_vec());
    let last = header.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The lines of `table`, without trailing blanks, each ending in a newline.
pub(crate) fn render(table: &Table) -> String {
    let mut text = table.trim_fmt();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_two_spaces_apart_numbers_right_aligned() {
        let mut t = plain(&["SRC ZONE", "DST ZONE", "ALLOWED/s"], &[2]);
        t.add_row(vec!["imaging", "pacs", "12.5"]);
        t.add_row(vec!["admin", "billing-and-finance", "1000.0"]);
        assert_eq!(
            render(&t),
            "SRC ZONE  DST ZONE             ALLOWED/s\n\
             imaging   pacs                      12.5\n\
             admin     billing-and-finance     1000.0\n"
        );
    }
}
