//! Stackful generators: a plain recursive function yields every node of a
//! tree, from whatever depth it has reached, through the `&Co` it is handed.
//! A Python generator cannot do this without `yield from` at every level.
//!
//! ```text
//! cargo run --example tree_walk
//! ```

use greenery::{Co, Generator};

/// A binary search tree of words.
#[derive(Default)]
struct Tree {
    root: Option<Box<Node>>,
}

struct Node {
    word: String,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

impl Tree {
    fn insert(&mut self, word: &str) {
        let mut slot = &mut self.root;
        while let Some(node) = slot {
            slot = if word < node.word.as_str() { &mut node.left } else { &mut node.right };
        }
        *slot = Some(Box::new(Node { word: word.to_string(), left: None, right: None }));
    }

    /// The words in order, one at a time: the walk is an ordinary recursive
    /// function running on the generator's own stack.
    fn into_words(self) -> Generator<(), (usize, String), usize> {
        Generator::new(move |co, ()| walk(&self.root, 0, co))
    }
}

/// Yields every word below `node` in order, with its depth; returns how many.
fn walk(node: &Option<Box<Node>>, depth: usize, co: &Co<(), (usize, String)>) -> usize {
    let Some(node) = node else { return 0 };
    let left = walk(&node.left, depth + 1, co);
    co.yield_((depth, node.word.clone()));
    let right = walk(&node.right, depth + 1, co);
    left + 1 + right
}

fn main() {
    let text = "coroutines are computer program components that allow execution \
                to be suspended and resumed generalizing subroutines";
    let mut tree = Tree::default();
    for word in text.split_whitespace() {
        tree.insert(word);
    }
    let mut words = tree.into_words();
    for (depth, word) in words.by_ref() {
        println!("{:indent$}{word}", "", indent = depth * 2);
    }
    println!("{} words", words.return_value().expect("the walk returns its count"));
}
