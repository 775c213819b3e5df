pub mod loops;
