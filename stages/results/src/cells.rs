//! A flat struct as CSV cells, numbers formatted by Rust's `{}` (`1`, `1e20` as
//! `100000000000000000000`, `NaN`), which is what prunus's result files have always held;
//! the `csv` crate's own serializer formats floats with ryu (`1.0`, `1e20`) instead.

use std::fmt::Display;

use serde::ser::{self, Impossible, Serialize, SerializeStruct};

/// The column names of `T`: its fields, in order.
pub(crate) fn header<T: Serialize + Default>() -> Vec<&'static str> {
    let mut c = Cells::default();
    T::default()
        .serialize(&mut c)
        .expect("a result row serializes to cells");
    c.names
}

/// The cells of one row.
pub(crate) fn cells<T: Serialize>(row: &T) -> Result<Vec<String>, String> {
    let mut c = Cells::default();
    row.serialize(&mut c).map_err(|e| e.0)?;
    Ok(c.cells)
}

#[derive(Default)]
struct Cells {
    names: Vec<&'static str>,
    cells: Vec<String>,
    /// Inside the top-level struct: a field must be a scalar.
    in_struct: bool,
}

#[derive(Debug)]
pub(crate) struct CellError(String);

impl Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}

impl ser::Error for CellError {
    fn custom<T: Display>(msg: T) -> Self {
        CellError(msg.to_string())
    }
}

impl Cells {
    fn push(&mut self, cell: impl Display) -> Result<(), CellError> {
        if !self.in_struct {
            return Err(CellError("a result row must be a struct".into()));
        }
        self.cells.push(cell.to_string());
        Ok(())
    }
}

fn unsupported(what: &str) -> CellError {
    CellError(format!(
        "a result row's fields must be numbers or strings, not {what}"
    ))
}

impl ser::Serializer for &mut Cells {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn serialize_bool(self, v: bool) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_char(self, v: char) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        self.push(v)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), CellError> {
        Err(unsupported("bytes"))
    }
    /// An absent value is an empty cell (the CSV convention, which readers take as `None`).
    fn serialize_none(self) -> Result<(), CellError> {
        self.push("")
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), CellError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        self.push("")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CellError> {
        self.push("")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CellError> {
        self.push(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), CellError> {
        Err(unsupported("an enum with data"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        Err(unsupported("a list"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, CellError> {
        Err(unsupported("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        Err(unsupported("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        Err(unsupported("an enum with data"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(unsupported("a map"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        if self.in_struct {
            return Err(unsupported("a nested struct"));
        }
        self.in_struct = true;
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        Err(unsupported("an enum with data"))
    }
}

impl SerializeStruct for &mut Cells {
    type Ok = ();
    type Error = CellError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        self.names.push(key);
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), CellError> {
        self.in_struct = false;
        Ok(())
    }
}
